"""Hosts of the logged-in user: add, list, status, update history and failed logins, setup help, manual update,
relays to third-party services, secret, delete."""

from __future__ import annotations

import json
from typing import Any

import bottle
import markupsafe

from ddserver import logs, prefixes, relay, sealing, secrets, validate
from ddserver.errors import Conflict, DDServerError, LimitReached, NotFound, ValidationError
from ddserver.interface.forms import Form
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import history, hosts, listing, notices, records, related, relays, tokens, zones
from ddserver.store.common import KEEP
from ddserver.store.hosts import Host


def own_host(ctx: Context, host_id: int) -> Host:
    """The host if it belongs to the user (admins may open any); others get a 404, never a 403. A related
    name has no page of its own (it is shown, edited and removed on its main host's)."""
    assert ctx.user is not None
    try:
        host = hosts.get_by_id(ctx.db, host_id)
    except NotFound:
        raise bottle.HTTPError(404)
    if host.user_id != ctx.user.id and not ctx.user.is_admin:
        raise bottle.HTTPError(404)
    logs.set_fields(host=host.name)
    if host.is_related:
        raise bottle.HTTPError(404)
    return host


def _limit(ctx: Context) -> int | None:
    assert ctx.user is not None
    return ctx.user.host_limit(ctx.config.dns.max_hosts_per_user)


def host_list(ctx: Context) -> str:
    assert ctx.user is not None
    found = listing.hosts_of_user(ctx.db, ctx.user.id)
    # The rows are rendered by themselves (autoescaped), then placed into the page as they are.
    rows = markupsafe.Markup(ctx.site.render_template("host_rows.html", ctx=ctx, hosts=found))
    return ctx.render("hosts.html", hosts=found, rows=rows, limit=_limit(ctx))


def _zones(ctx: Context) -> list[zones.Zone]:
    assert ctx.user is not None
    return zones.usable_by(ctx.db, ctx.user.id, ctx.user.is_admin)


def _check_label(ctx: Context, zone_choice: str, label_text: str, form: Form) -> tuple[zones.Zone | None, str | None]:
    assert ctx.user is not None
    usable = {str(z.id): z for z in _zones(ctx)}
    zone = usable.get(zone_choice)
    if zone is None:
        form.error("zone", ctx.gettext("Choose one of the zones."))
    reserved = () if ctx.user.is_admin else ctx.config.dns.reserved_names
    label = form.check("label", lambda text: validate.label(text, reserved=reserved))
    if zone is None or label is None:
        return zone, None
    name = f"{label}.{zone.name}"
    if len(name) > 253:
        form.error("label", ctx.gettext("The whole name is longer than 253 characters."))
        return zone, None
    return zone, name


def add_page(ctx: Context) -> str:
    assert ctx.user is not None
    count = hosts.count_for_user(ctx.db, ctx.user.id)
    return ctx.render("host_add.html", form=Form(), zones=_zones(ctx), limit=_limit(ctx), count=count)


def create_host(ctx: Context, form: Form) -> tuple[Host, str] | None:
    """Add the host that a form asks for (``zone`` as the id of a zone the user may use, ``label``,
    ``description``): the one check of a new host, for this page and the JSON API.

    :returns: the host and its secret (to be shown once), or None with the errors in ``form``.
    """
    assert ctx.user is not None
    _zone, name = _check_label(ctx, form["zone"], form["label"], form)
    description = str(form["description"])[:200]
    if not form.ok or name is None:
        return None
    secret = secrets.new_host_secret()
    try:
        host = hosts.add(
            ctx.db,
            ctx.user.id,
            name,
            secrets.hash_host_secret(secret, ctx.config.auth.pepper),
            default_limit=ctx.config.dns.max_hosts_per_user,
            description=description,
        )
    except LimitReached:
        form.error("_form", _limit_message(ctx))
    except Conflict:
        form.error("label", ctx.gettext("%(name)s is taken; choose another name.", name=name))
    except (ValidationError, NotFound) as exc:
        form.error("zone", exc.message)
    else:
        ctx.log_event("host", f"host {host.name}", "added")
        return host, secret
    return None


def add(ctx: Context) -> str:
    assert ctx.user is not None
    form = Form.from_request(ctx, "zone", "label", "description")
    made = create_host(ctx, form)
    if made is not None:
        return detail_page(ctx, made[0], secret=made[1], status=201)
    count = hosts.count_for_user(ctx.db, ctx.user.id)
    return ctx.render("host_add.html", status=400, form=form, zones=_zones(ctx), limit=_limit(ctx), count=count)


def _limit_message(ctx: Context) -> str:
    return ctx.gettext(
        "You have reached your limit of %(limit)s hosts. Delete a host you no longer use, "
        "or ask an administrator for a higher limit.",
        limit=_limit(ctx),
    )


def check_label(ctx: Context) -> str:
    """JSON for the live check of the add form: is this name valid and free?"""
    form = Form({"label": ctx.query("label"), "zone": ctx.query("zone")})
    _zone, name = _check_label(ctx, form["zone"], form["label"], form)
    if form.ok and name:
        try:
            hosts.get(ctx.db, name)
        except NotFound:
            pass
        else:
            form.error("label", ctx.gettext("%(name)s is taken; choose another name.", name=name))
    ctx.response.content_type = "application/json"
    message = form.errors.get("label") or form.errors.get("zone") or ctx.gettext("%(name)s is free.", name=name)
    return json.dumps({"ok": form.ok, "name": name or "", "message": message})


def update_url(ctx: Context) -> str:
    return ctx.config.update_url + "/nic/update"


def detail_page(ctx: Context, host: Host, *, secret: str | None = None, status: int = 200, **values: Any) -> str:
    assert ctx.user is not None
    from urllib.parse import urlsplit

    url = update_url(ctx)
    values.setdefault("address_form", Form({"ipv4": host.ipv4 or "", "ipv6": host.ipv6 or ""}))
    values.setdefault("description_form", Form({"description": host.description}))
    values.setdefault("relay_form", Form({"family": "both"}))
    values.setdefault(
        "dns_form", Form({"ttl": "" if host.ttl is None else str(host.ttl), "wildcard": "1" if host.wildcard else ""})
    )
    values.setdefault("related_form", Form({"place": "host", "prefix_len": str(prefixes.DEFAULT_PREFIX_LEN)}))
    zone = zones.get_by_id(ctx.db, host.zone_id)
    return ctx.render(
        "host.html",
        status=status,
        host=host,
        zone=zone,
        zone_ttl=zone.host_ttl(ctx.config.dns.default_ttl),
        secret=secret,
        records=records.for_host(ctx.db, host.id),
        update_url=url,
        update_host=urlsplit(url).netloc,
        update_scheme=urlsplit(url).scheme,
        family_update_urls=[u + "/nic/update" for u in (ctx.config.update_url_of(4), ctx.config.update_url_of(6)) if u],
        has_update_token=bool(tokens.for_user(ctx.db, host.user_id, "update")),
        updates=history.recent_updates(ctx.db, host.id, ctx.config.updater.history_kept),
        auth_failures=history.recent_auth_failures(ctx.db, host.id, ctx.config.updater.auth_trail_kept),
        stale_warning=notices.open_warning(ctx.db, host.id) is not None,
        relays=relays.for_host(ctx.db, host.id),
        relay_limit=ctx.config.relay.max_per_host,
        related_names=related.of(ctx.db, host.id),
        related_limit=ctx.config.dns.max_related_per_host,
        **values,
    )


def detail(ctx: Context, host_id: int) -> str:
    return detail_page(ctx, own_host(ctx, host_id))


def read_addresses(form: Form) -> tuple[str | None, str | None] | None:
    """The addresses a form sets (``ipv4``, ``ipv6``; empty: none of that family): the one check of addresses
    typed in, for this page and the JSON API.

    :returns: the addresses, or None with the errors in ``form``.
    """
    ipv4 = form.check("ipv4", validate.ipv4) if form["ipv4"] else None
    ipv6 = form.check("ipv6", validate.ipv6) if form["ipv6"] else None
    return (ipv4, ipv6) if form.ok else None


def save_addresses(ctx: Context, host: Host, ipv4: Any, ipv6: Any) -> hosts.AddressChange:
    """Set a host's addresses (``KEEP`` keeps a family) as the web interface does, in its update history."""
    return hosts.set_addresses(
        ctx.db,
        host.id,
        ipv4=ipv4,
        ipv6=ipv6,
        client=ctx.client,
        tls=ctx.https,
        result="web",
        record=ctx.config.updater.history_kept > 0,
    )


def _browser_addresses(ctx: Context, form: Form) -> tuple[Any, Any, list[str]]:
    """The addresses of "Use my IPv4 and IPv6 addresses": what the page's script learned from the updater's
    IPv4-only and IPv6-only names (``found_ipv4``, ``found_ipv6``), else the connection's own for its family.
    A family found neither way is kept as it is, as "Use my current address" keeps it.

    :returns: the IPv4 and IPv6 values for ``hosts.set_addresses`` and the families that were not found.
    """
    client = validate.ip_address(ctx.client)
    found: dict[int, Any] = {}
    for family, check in ((4, validate.ipv4), (6, validate.ipv6)):
        name = f"found_ipv{family}"
        if form[name]:
            found[family] = form.check(name, check)
            if found[family] is None:
                form.error("_form", form.errors.pop(name))
        elif client.version == family:
            found[family] = client.compressed
    missing = [f"IPv{family}" for family in (4, 6) if family not in found]
    for family in (4, 6):
        if family in found and found[family] is not None:
            form.values[f"ipv{family}"] = found[family]
    return found.get(4, KEEP), found.get(6, KEEP), missing


def set_address(ctx: Context, host_id: int) -> str:
    host = own_host(ctx, host_id)
    form = Form.from_request(ctx, "ipv4", "ipv6", "use_current", "found_ipv4", "found_ipv6")
    ipv4: Any = KEEP
    ipv6: Any = KEEP
    missing: list[str] = []
    if form["use_current"] == "both":
        ipv4, ipv6, missing = _browser_addresses(ctx, form)
    elif form["use_current"]:
        address = validate.ip_address(ctx.client)
        if address.version == 4:
            ipv4 = str(address)
        else:
            ipv6 = address.compressed
        form.values["ipv4" if address.version == 4 else "ipv6"] = str(address)
    else:
        typed = read_addresses(form)
        if typed is not None:
            ipv4, ipv6 = typed
    if not form.ok:
        return detail_page(ctx, host, status=400, address_form=form)
    change = save_addresses(ctx, host, ipv4, ipv6)
    message = ctx.gettext("The addresses are saved.") if change.changed else ctx.gettext("The addresses are unchanged.")
    if missing:
        # Only one family was found: the visitor has no address of the other, or its name did not answer.
        ctx.flash(message, "success")
        message = ctx.gettext(
            "No %(family)s address was found for this browser (it may have none, or the %(family)s-only name of "
            "the updater did not answer): the %(family)s address is unchanged.",
            family=missing[0],
        )
        return ctx.redirect(f"/hosts/{host.id}", message, "warning")
    return ctx.redirect(f"/hosts/{host.id}", message)


def set_description(ctx: Context, host_id: int) -> str:
    host = own_host(ctx, host_id)
    hosts.set_properties(ctx.db, host.id, description=ctx.form("description")[:200])
    return ctx.redirect(f"/hosts/{host.id}", ctx.gettext("The description is saved."))


def save_dns(ctx: Context, host: Host, form: Form) -> Host | None:
    """Check and save a host's ``ttl`` (empty: the zone's) and ``wildcard`` (``"1"``: on) within the rules of
    its zone: the one check of them, for this page and the JSON API.

    :returns: the host as saved, or None with the errors in ``form``.
    """
    zone = zones.get_by_id(ctx.db, host.zone_id)
    ttl = None
    if form["ttl"]:
        ttl = form.check("ttl", lambda text: validate.ttl(text, minimum=zone.min_ttl, maximum=zone.max_ttl))
    wildcard = form["wildcard"] == "1"
    if wildcard and not host.wildcard and not zone.allow_wildcards:
        form.error("wildcard", ctx.gettext("This zone does not allow wildcard hosts."))
    saved = None
    if form.ok:
        try:
            saved = hosts.set_properties(ctx.db, host.id, ttl=ttl, wildcard=wildcard)
        except ValidationError as exc:
            # The zone's rules changed since the checks above.
            form.error("_form", exc.message)
    if saved is None:
        return None
    ctx.log_event("host", f"host {host.name}", f"ttl {ttl if ttl is not None else 'of the zone'}, wildcard {wildcard}")
    return saved


def set_dns(ctx: Context, host_id: int) -> str:
    """The host's TTL (empty: the zone's) and wildcard, within the rules of its zone."""
    host = own_host(ctx, host_id)
    form = Form.from_request(ctx, "ttl", "wildcard")
    if save_dns(ctx, host, form) is None:
        return detail_page(ctx, host, status=400, dns_form=form)
    return ctx.redirect(f"/hosts/{host.id}", ctx.gettext("The TTL and wildcard are saved."))


_RELAY_FIELDS = ("url", "remote_name", "username", "secret", "family")


def _relay_form(ctx: Context, *, secret_required: bool) -> tuple[Form, dict[str, Any]]:
    """The relay form, checked: its errors, and the values to store (``sealed_secret`` None: keep the secret)."""
    form = Form.from_request(ctx, *_RELAY_FIELDS, secret=("secret",))
    url = form.check("url", relay.check_url)
    remote_name = form.check("remote_name", relay.check_remote_name)
    username = form.check("username", relay.check_username)
    family = form.check("family", relay.check_family)
    secret = None
    if form["secret"] or secret_required:
        secret = form.check("secret", relay.check_secret)
    values = {"url": url, "remote_name": remote_name, "username": username}
    values["family"] = family.value if family is not None else None
    values["secret"] = secret
    return form, values


def _sealed(ctx: Context, host: Host, secret: str | None, form: Form) -> str | None:
    """The secret sealed for the relay of ``host`` (None for none); a missing data key is a form error."""
    if secret is None:
        return None
    try:
        return sealing.load(ctx.config, required=True).seal(secret, relays.secret_context(host.id))
    except DDServerError:
        form.error("_form", ctx.gettext("Relays cannot be saved: the service has no data key. Tell its administrator."))
        return None


def _own_relay(ctx: Context, host: Host, relay_id: int) -> relays.Relay:
    try:
        found = relays.get(ctx.db, relay_id)
    except NotFound:
        raise bottle.HTTPError(404)
    if found.host_id != host.id:
        raise bottle.HTTPError(404)
    return found


def add_relay(ctx: Context, host_id: int) -> str:
    """A relay to a third-party dyndns2 service; the host's current addresses are sent to it at once."""
    host = own_host(ctx, host_id)
    form, values = _relay_form(ctx, secret_required=True)
    limit = ctx.config.relay.max_per_host
    if len(relays.for_host(ctx.db, host.id)) >= limit:
        form.error("_form", ctx.gettext("A host may have at most %(limit)s relays.", limit=limit))
    sealed = _sealed(ctx, host, values["secret"], form) if form.ok else None
    if form.ok and sealed is not None:
        try:
            added = relays.add(
                ctx.db,
                host.id,
                url=values["url"],
                remote_name=values["remote_name"],
                username=values["username"],
                sealed_secret=sealed,
                family=values["family"],
                limit=limit,
            )
        except LimitReached:
            form.error("_form", ctx.gettext("A host may have at most %(limit)s relays.", limit=limit))
        else:
            ctx.log_event("host", f"host {host.name}", f"relay {added.id} to {added.url} added")
            return ctx.redirect(f"/hosts/{host.id}#h-relays", ctx.gettext("The relay is saved."))
    return detail_page(ctx, host, status=400, relay_form=form)


def edit_relay_page(ctx: Context, host_id: int, relay_id: int) -> str:
    host = own_host(ctx, host_id)
    found = _own_relay(ctx, host, relay_id)
    form = Form(
        {"url": found.url, "remote_name": found.remote_name, "username": found.username, "family": found.family}
    )
    return ctx.render("host_relay.html", host=host, relay=found, form=form)


def edit_relay(ctx: Context, host_id: int, relay_id: int) -> str:
    """Change a relay (an empty secret keeps it); it is tried again at once, even after ``badauth``."""
    host = own_host(ctx, host_id)
    found = _own_relay(ctx, host, relay_id)
    form, values = _relay_form(ctx, secret_required=False)
    sealed = _sealed(ctx, host, values["secret"], form) if form.ok else None
    if form.ok:
        try:
            relays.edit(
                ctx.db,
                found.id,
                url=values["url"],
                remote_name=values["remote_name"],
                username=values["username"],
                family=values["family"],
                sealed_secret=sealed,
            )
        except NotFound:
            raise bottle.HTTPError(404)
        ctx.log_event("host", f"host {host.name}", f"relay {found.id} to {values['url']} edited")
        return ctx.redirect(f"/hosts/{host.id}#h-relays", ctx.gettext("The relay is saved."))
    return ctx.render("host_relay.html", status=400, host=host, relay=found, form=form)


def remove_relay(ctx: Context, host_id: int, relay_id: int) -> str:
    host = own_host(ctx, host_id)
    found = _own_relay(ctx, host, relay_id)
    try:
        relays.remove(ctx.db, found.id)
    except NotFound:
        pass  # removed meanwhile
    ctx.log_event("host", f"host {host.name}", f"relay {found.id} to {found.url} removed")
    return ctx.redirect(f"/hosts/{host.id}#h-relays", ctx.gettext("The relay is removed."))


def new_secret(ctx: Context, host: Host) -> str:
    """Give a host a new secret (the old one stops working in every updater process); returns it, to be shown
    once."""
    secret = secrets.new_host_secret()
    hosts.set_secret_hash(ctx.db, host.id, secrets.hash_host_secret(secret, ctx.config.auth.pepper))
    ctx.log_event("host", f"host {host.name}", "secret regenerated")
    return secret


def regenerate_secret(ctx: Context, host_id: int) -> str:
    host = own_host(ctx, host_id)
    return detail_page(ctx, host, secret=new_secret(ctx, host))


def clear_faults(ctx: Context, host_id: int) -> str:
    """The owner clears the abuse flag after fixing the client (an admin's block stays)."""
    host = own_host(ctx, host_id)
    hosts.set_flags(ctx.db, host.id, abuse=False, reset_faults=True)
    ctx.log_event("host", f"host {host.name}", "abuse flag cleared by the owner")
    return ctx.redirect(f"/hosts/{host.id}", ctx.gettext("The abuse flag and the fault counters are cleared."))


def keep(ctx: Context, host_id: int) -> str:
    """The owner answers a stale warning from the host's page: the host is kept (not removed)."""
    host = own_host(ctx, host_id)
    if notices.confirm_host(ctx.db, host.id):
        ctx.log_event("host", f"host {host.name}", "kept after a stale warning")
    return ctx.redirect(f"/hosts/{host.id}", ctx.gettext("The host is kept."))


def keep_link_page(ctx: Context, token: str) -> str:
    """The link of a stale warning: a page with a button (a GET changes nothing: mail scanners open links)."""
    name = notices.check_link(ctx.db, token)
    return ctx.render("host_keep.html", token=token, host_name=name, done=False, status=200 if name else 400)


def keep_link(ctx: Context, token: str) -> str:
    name = notices.confirm(ctx.db, token)
    if name is None:
        return ctx.render("host_keep.html", token=token, host_name=None, done=False, status=400)
    ctx.log_event("host", f"host {name}", "kept after a stale warning (mail link)")
    return ctx.render("host_keep.html", token=token, host_name=name, done=True)


def delete_page(ctx: Context, host_id: int) -> str:
    return ctx.render("host_delete.html", host=own_host(ctx, host_id))


def delete(ctx: Context, host_id: int) -> str:
    host = own_host(ctx, host_id)
    hosts.delete(ctx.db, host.id)
    ctx.log_event("host", f"host {host.name}", "deleted")
    return ctx.redirect("/hosts", ctx.gettext("%(name)s is deleted.", name=validate.to_unicode(host.name)))


def register(app: bottle.Bottle) -> None:
    user = {"auth": AuthLevel.USER}
    app.route("/hosts", "GET", host_list, **user)
    app.route("/hosts/new", "GET", add_page, **user)
    app.route("/hosts/new", "POST", add, **user)
    app.route("/hosts/check", "GET", check_label, **user)
    app.route("/hosts/<host_id:int>", "GET", detail, **user)
    app.route("/hosts/<host_id:int>/address", "POST", set_address, **user)
    app.route("/hosts/<host_id:int>/description", "POST", set_description, **user)
    app.route("/hosts/<host_id:int>/dns", "POST", set_dns, **user)
    app.route("/hosts/<host_id:int>/secret", "POST", regenerate_secret, **user)
    app.route("/hosts/<host_id:int>/clear-faults", "POST", clear_faults, **user)
    app.route("/hosts/<host_id:int>/keep", "POST", keep, **user)
    app.route("/hosts/keep/<token>", "GET", keep_link_page)
    app.route("/hosts/keep/<token>", "POST", keep_link)
    app.route("/hosts/<host_id:int>/relays", "POST", add_relay, **user)
    app.route("/hosts/<host_id:int>/relays/<relay_id:int>", "GET", edit_relay_page, **user)
    app.route("/hosts/<host_id:int>/relays/<relay_id:int>", "POST", edit_relay, **user)
    app.route("/hosts/<host_id:int>/relays/<relay_id:int>/delete", "POST", remove_relay, **user)
    app.route("/hosts/<host_id:int>/delete", "GET", delete_page, **user)
    app.route("/hosts/<host_id:int>/delete", "POST", delete, **user)
