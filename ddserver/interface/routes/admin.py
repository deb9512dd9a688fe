"""Administration: users, zones, hosts across users, and the audit view. Every action enters the audit trail."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
from typing import Any

import bottle

from ddserver import sealing, secrets, signing, validate
from ddserver.config import parse_listen
from ddserver.dns import dnssec, remote
from ddserver.errors import ConfigError, Conflict, DDServerError, LimitReached, NotFound, ValidationError
from ddserver.interface.forms import Form
from ddserver.interface.routes import confirm_zone_delete, page_args, safe_next, send_mail
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import (
    audit,
    changes,
    hosts,
    listing,
    ownzones,
    retention,
    rfc2136,
    sessions,
    tokens,
    users,
    zones,
)
from ddserver.store import dnssec as dnssec_store
from ddserver.store.users import User
from ddserver.store.zones import Zone

PER_PAGE = 50
AUDIT = audit.ADMIN
TRANSPORTS = ("tcp", "udp")
#: The zone columns that say where and how the RFC 2136 worker pushes a zone.
RFC2136_COLUMNS = ("rfc2136_server", "rfc2136_transport", "tsig_name", "tsig_algorithm", "tsig_secret")


def _pages(total: int) -> int:
    return max(1, math.ceil(total / PER_PAGE))


def _user(ctx: Context, user_id: int) -> User:
    try:
        return users.get(ctx.db, user_id)
    except NotFound:
        raise bottle.HTTPError(404)


def _zone(ctx: Context, zone_id: int) -> Zone:
    try:
        return zones.get_by_id(ctx.db, zone_id)
    except NotFound:
        raise bottle.HTTPError(404)


def index(ctx: Context) -> str:
    return ctx.redirect("/admin/users")


# -- users -----------------------------------------------------------------------------------------


def user_list(ctx: Context) -> str:
    page, offset = page_args(ctx, PER_PAGE)
    text = ctx.query("q")[:100]
    found, total = listing.users_page(ctx.db, text, offset=offset, limit=PER_PAGE)
    return ctx.render("admin/users.html", users=found, total=total, page=page, pages=_pages(total), q=text)


def user_detail(ctx: Context, user_id: int, status: int = 200, limit_form: Form | None = None) -> str:
    user = _user(ctx, user_id)
    owned = hosts.search(ctx.db, user_id=user.id, limit=1000)[0]
    shown = "" if user.max_hosts is None else str(user.max_hosts)
    return ctx.render(
        "admin/user.html",
        status=status,
        user=user,
        hosts=owned,
        limit_form=limit_form or Form({"max_hosts": shown}),
        default_limit=ctx.config.dns.max_hosts_per_user,
    )


_FLAG_ACTIONS = {
    "activate": {"is_active": True},
    "approve": {"is_approved": True, "is_active": True},
    "disable": {"is_disabled": True},
    "enable": {"is_disabled": False},
    "make-admin": {"is_admin": True},
    "remove-admin": {"is_admin": False},
}


def user_flags(ctx: Context, user_id: int) -> str:
    user = _user(ctx, user_id)
    action = ctx.form("action")
    flags = _FLAG_ACTIONS.get(action)
    if flags is None:
        return ctx.redirect(f"/admin/users/{user.id}", ctx.gettext("Unknown action."), "danger")
    try:
        updated = users.set_flags(ctx.db, user.id, **flags)
    except LimitReached:
        return ctx.redirect(
            f"/admin/users/{user.id}",
            ctx.gettext("This is the last administrator: make another user admin first."),
            "danger",
        )
    if action == "disable":
        sessions.delete_for_user(ctx.db, user.id)
    if action == "approve" and not user.is_approved:
        send_mail(ctx, user.email, ctx.gettext("Your account is approved"), "approved", user=updated)
    ctx.log_event(AUDIT, f"user {user.username}", action)
    return ctx.redirect(f"/admin/users/{user.id}", ctx.gettext("Saved."))


def user_limit(ctx: Context, user_id: int) -> str:
    user = _user(ctx, user_id)
    form = Form.from_request(ctx, "max_hosts")
    text = form["max_hosts"]
    value: int | None
    if text == "":
        value = None
    else:
        try:
            value = int(text)
        except ValueError:
            value = -2
        if not -1 <= value <= users.MAX_HOST_LIMIT:
            form.error("max_hosts", ctx.gettext("Give a whole number, -1 for unlimited, or leave it empty."))
            return user_detail(ctx, user.id, status=400, limit_form=form)
    users.set_max_hosts(ctx.db, user.id, value)
    shown = "default" if value is None else ("unlimited" if value == -1 else str(value))
    ctx.log_event(AUDIT, f"user {user.username}", f"host limit set to {shown}")
    return ctx.redirect(f"/admin/users/{user.id}", ctx.gettext("Saved."))


def user_delete_page(ctx: Context, user_id: int) -> str:
    user = _user(ctx, user_id)
    return ctx.render("admin/user_delete.html", user=user, host_count=hosts.count_for_user(ctx.db, user.id))


def user_delete(ctx: Context, user_id: int) -> str:
    user = _user(ctx, user_id)
    assert ctx.user is not None
    try:
        # The store writes the audit entry, naming the account by a pseudonym only.
        retention.delete_account(ctx.db, user.id, actor_id=ctx.user.id, client=ctx.client)
    except LimitReached:
        return ctx.redirect(
            f"/admin/users/{user.id}",
            ctx.gettext("This is the last administrator: make another user admin first."),
            "danger",
        )
    return ctx.redirect("/admin/users", ctx.gettext("%(name)s is deleted.", name=user.username))


def user_new_page(ctx: Context) -> str:
    return ctx.render("admin/user_new.html", form=Form())


def user_new(ctx: Context) -> str:
    form = Form.from_request(ctx, "username", "email", "is_admin")
    username = form.check("username", validate.username)
    email = form.check("email", validate.email)
    if not form.ok:
        return ctx.render("admin/user_new.html", status=400, form=form)
    assert username and email
    try:
        user = users.add(ctx.db, username, email, is_admin=form["is_admin"] == "1", language=ctx.lang)
    except Conflict as exc:
        form.error("username", exc.message)
        return ctx.render("admin/user_new.html", status=400, form=form)
    # The new user sets a password from a mail; the link lasts a week.
    token = tokens.create(ctx.db, "reset", user.id, max(ctx.config.auth.token_lifetime, 7 * 86400))
    sent = send_mail(ctx, email, ctx.gettext("Your new account"), "welcome", user=user, token=token)
    ctx.log_event(AUDIT, f"user {user.username}", "created" + (" as admin" if user.is_admin else ""))
    if sent:
        return ctx.redirect(f"/admin/users/{user.id}", ctx.gettext("The user is created and got a mail."))
    return ctx.redirect(
        f"/admin/users/{user.id}",
        ctx.gettext("The user is created, but the mail could not be sent: check [mail] and send a password reset."),
        "warning",
    )


# -- zones -----------------------------------------------------------------------------------------


def zone_list(ctx: Context) -> str:
    found = zones.list_all(ctx.db)
    owner_ids = {zone.owner_id for zone in found if zone.owner_id is not None}
    return ctx.render(
        "admin/zones.html",
        zones=found,
        counts=zones.host_counts(ctx.db),
        owners={uid: users.get(ctx.db, uid).username for uid in owner_ids},
        states={zone.id: ownzones.state_of(zone) for zone in found},
    )


def zone_approval(ctx: Context, zone_id: int) -> str:
    """Approve a user's zone (served once its delegation is found) or reject it (it is deleted)."""
    zone = _zone(ctx, zone_id)
    action = ctx.form("action")
    if zone.owner_id is None or action not in ("approve", "reject"):
        return ctx.redirect("/admin/zones", ctx.gettext("Unknown action."), "danger")
    if action == "approve":
        ownzones.approve(ctx.db, zone.id, ctx.config.zones.grace_period)
        ctx.log_event(AUDIT, f"zone {zone.name}", "approved")
        return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is approved.", name=zone.name))
    count = zones.delete(ctx.db, zone.id)
    ctx.log_event(AUDIT, f"zone {zone.name}", f"rejected, deleted with {count} hosts")
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is rejected and deleted.", name=zone.name))


def _zone_form(ctx: Context, form: Form, zone: Zone | None) -> dict[str, object] | None:
    """Check the zone form (of a new zone when ``zone`` is None); returns the values for the store, or None
    with errors on the form."""
    values: dict[str, object] = {}
    if zone is None:
        values["name"] = form.check("name", validate.zone_name)
    servers = [s for s in form["nameservers"].replace(",", " ").split() if s]
    if not servers:
        form.error("nameservers", ctx.gettext("Give at least one nameserver."))
    try:
        values["nameservers"] = [validate.hostname(s) for s in servers]
    except ValidationError as exc:
        form.error("nameservers", exc.message)
    values["hostmaster"] = form.check("hostmaster", validate.hostmaster)
    if form["ttl"]:
        values["ttl"] = form.check("ttl", lambda t: validate.ttl(t, minimum=1, maximum=86400))
    else:
        values["ttl"] = None
    for column, default in (("min_ttl", "60"), ("max_ttl", "86400")):
        form.values[column] = form[column] or default
        values[column] = form.check(column, _host_ttl_bound)
    low, high = values["min_ttl"], values["max_ttl"]
    if isinstance(low, int) and isinstance(high, int) and low > high:
        form.error("max_ttl", ctx.gettext("The highest TTL must not be below the lowest."))
    values["allow_wildcards"] = form["allow_wildcards"] == "1"
    values["is_public"] = form["is_public"] == "1"
    values["description"] = form["description"][:200]
    allowed: list[int] = []
    for name in form["allowed_users"].replace(",", " ").split():
        try:
            allowed.append(users.get_by_name(ctx.db, name).id)
        except NotFound:
            form.error("allowed_users", ctx.gettext("There is no user %(name)s.", name=name))
    values["allowed"] = allowed
    notify: list[str] = []
    for item in form["also_notify"].replace(",", " ").split():
        try:
            address = validate.notify_address(item)
        except ValidationError:
            form.error("also_notify", ctx.gettext("%(text)s is not an IP address or address:port.", text=item))
            continue
        if address not in notify:
            notify.append(address)
    values["also_notify"] = tuple(notify)
    values.update(_rfc2136_form(ctx, form, zone))
    return values if form.ok else None


def _host_ttl_bound(text: str) -> int:
    return validate.ttl(text, maximum=2**31 - 1)


def _server_address(ctx: Context, text: str) -> str:
    """``HOST:PORT`` of an RFC 2136 primary, the port 53 when left out; the host must be an IP address
    (the worker sends to it without resolving names).

    :raises ValidationError: with what to type.
    """
    text = text.strip()
    if (text.startswith("[") and text.endswith("]")) or ":" not in text:
        text += ":53"
    problem = ctx.gettext("Give the IP address and port, such as 192.0.2.53:53 or [2001:db8::53]:53.")
    try:
        host, port = parse_listen(text, default_host="")
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValidationError(problem)
    if not 0 < port < 65536:
        raise ValidationError(problem)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _rfc2136_form(ctx: Context, form: Form, zone: Zone | None) -> dict[str, Any]:
    """The RFC 2136 settings of the zone form, checked as ``ddserver zone add/edit`` checks them.

    An empty secret on edit keeps the stored one (it is never sent back to the browser).
    """
    transport = form["rfc2136_transport"] or "tcp"
    if transport not in TRANSPORTS:
        form.error("rfc2136_transport", ctx.gettext("Choose TCP or UDP."))
    algorithm = form["tsig_algorithm"] or validate.TSIG_ALGORITHMS[0]
    if algorithm not in validate.TSIG_ALGORITHMS:
        form.error("tsig_algorithm", ctx.gettext("Choose one of the algorithms."))
    secret = "".join(form["tsig_secret"].split())
    key_name = form["tsig_name"]
    if not form["rfc2136_server"]:
        if key_name or secret:
            form.error("rfc2136_server", ctx.gettext("A TSIG key goes with a primary server: give its address."))
        return dict(rfc2136_server=None, rfc2136_transport="tcp", tsig_name=None, tsig_algorithm=None, tsig_secret=None)
    values: dict[str, Any] = {
        "rfc2136_server": form.check("rfc2136_server", lambda text: _server_address(ctx, text)),
        "rfc2136_transport": transport,
        "tsig_name": None,
        "tsig_algorithm": None,
        "tsig_secret": None,
    }
    if not key_name:
        if secret:
            form.error("tsig_name", ctx.gettext("Give the key's name, or leave the secret empty."))
        return values
    values["tsig_name"] = form.check("tsig_name", validate.hostname)
    values["tsig_algorithm"] = algorithm
    if not secret and zone is not None and zone.tsig_secret:
        secret = zone.tsig_secret
    if not secret:
        form.error("tsig_secret", ctx.gettext("Give the key's secret (base64)."))
        return values
    try:
        valid = len(secret) <= 512 and bool(base64.b64decode(secret, validate=True))
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        form.error("tsig_secret", ctx.gettext("This is not a base64 secret, such as tsig-keygen prints."))
    values["tsig_secret"] = secret
    return values


_ZONE_FIELDS = (
    "name",
    "nameservers",
    "hostmaster",
    "ttl",
    "min_ttl",
    "max_ttl",
    "allow_wildcards",
    "is_public",
    "description",
    "allowed_users",
    "rfc2136_server",
    "rfc2136_transport",
    "tsig_name",
    "tsig_algorithm",
    "tsig_secret",
    "also_notify",
)


def _zone_form_from_request(ctx: Context) -> Form:
    # The TSIG secret is never shown back, not even after an error on another field.
    return Form.from_request(ctx, *_ZONE_FIELDS, secret=("tsig_secret",))


def _zone_page(
    ctx: Context,
    form: Form,
    zone: Zone | None,
    status: int = 200,
    key_form: Form | None = None,
    new_key: tuple[str, str] | None = None,
) -> str:
    return ctx.render(
        "admin/zone_form.html",
        status=status,
        form=form,
        zone=zone,
        transfer_keys=zones.transfer_keys(ctx.db, zone.id) if zone is not None else [],
        key_form=key_form or Form({"key_algorithm": validate.TSIG_ALGORITHMS[0]}, secret=("key_secret",)),
        new_key=new_key,
        algorithms=[
            (a, a + (f" ({ctx.gettext('default')})" if a == validate.TSIG_ALGORITHMS[0] else ""))
            for a in validate.TSIG_ALGORITHMS
        ],
        masked_secret=_masked(zone.tsig_secret) if zone is not None and zone.tsig_secret else "",
    )


def _masked(secret: str) -> str:
    """A TSIG secret as admins see it: enough to tell two keys apart, never the whole (as ``zone list``)."""
    return secret[:4] + "…"


def _describe_rfc2136(zone: Zone) -> str:
    """The zone's RFC 2136 settings for the audit trail, without the secret."""
    if not zone.rfc2136_server:
        return "not pushed"
    key = f"key {zone.tsig_name} ({zone.tsig_algorithm})" if zone.tsig_name else "unsigned"
    return f"{zone.rfc2136_server} {zone.rfc2136_transport} {key}"


def zone_new_page(ctx: Context) -> str:
    return _zone_page(
        ctx,
        Form(
            {"is_public": "1", "rfc2136_transport": "tcp", "min_ttl": "60", "max_ttl": "86400", "allow_wildcards": "1"}
        ),
        None,
    )


def zone_new(ctx: Context) -> str:
    form = _zone_form_from_request(ctx)
    values = _zone_form(ctx, form, None)
    if values is None:
        return _zone_page(ctx, form, None, status=400)
    allowed = values.pop("allowed")
    try:
        zone = zones.add(
            ctx.db,
            str(values.pop("name")),
            values.pop("nameservers"),  # type: ignore[arg-type]
            str(values.pop("hostmaster")),
            is_public=bool(values.pop("is_public")),
            **values,  # type: ignore[arg-type]
        )
    except Conflict as exc:
        form.error("name", exc.message)
        return _zone_page(ctx, form, None, status=400)
    zones.set_allowed_users(ctx.db, zone.id, allowed)  # type: ignore[arg-type]
    detail = "added" + (f"; rfc2136 {_describe_rfc2136(zone)}" if zone.rfc2136_server else "")
    ctx.log_event(AUDIT, f"zone {zone.name}", detail)
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is added.", name=zone.name))


def zone_edit_page(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    return _zone_page(ctx, _edit_form(ctx, zone), zone)


def _edit_form(ctx: Context, zone: Zone) -> Form:
    """The zone form filled with the zone's settings (never its TSIG secret)."""
    allowed = [users.get(ctx.db, uid).username for uid in zones.allowed_users(ctx.db, zone.id)]
    return Form(
        {
            "nameservers": " ".join(zone.nameservers),
            "hostmaster": validate.rname_to_email(zone.hostmaster),
            "ttl": "" if zone.ttl is None else str(zone.ttl),
            "min_ttl": str(zone.min_ttl),
            "max_ttl": str(zone.max_ttl),
            "allow_wildcards": "1" if zone.allow_wildcards else "",
            "is_public": "1" if zone.is_public else "",
            "description": zone.description,
            "allowed_users": " ".join(sorted(allowed)),
            "rfc2136_server": zone.rfc2136_server or "",
            "rfc2136_transport": zone.rfc2136_transport or "tcp",
            "tsig_name": zone.tsig_name or "",
            "tsig_algorithm": zone.tsig_algorithm or validate.TSIG_ALGORITHMS[0],
            "also_notify": " ".join(zone.also_notify),
        }
    )


def zone_edit(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    form = _zone_form_from_request(ctx)
    values = _zone_form(ctx, form, zone)
    if values is None:
        return _zone_page(ctx, form, zone, status=400)
    allowed = values.pop("allowed")
    rfc2136_changed = any(values[column] != getattr(zone, column) for column in RFC2136_COLUMNS)
    if not values["rfc2136_server"] and not zone.rfc2136_server:
        rfc2136_changed = False  # neither pushed before nor now: nothing for the worker
    updated = zones.update(ctx.db, zone.id, **values)
    zones.set_allowed_users(ctx.db, zone.id, allowed)  # type: ignore[arg-type]
    detail = "edited"
    if rfc2136_changed:
        # As 'ddserver zone edit' does: a zone pushed from now on starts at the feed's end, and a new
        # server or key makes the worker compare the whole zone before it pushes the next changes.
        if updated.rfc2136_server:
            if not zone.rfc2136_server:
                zones.set_rfc2136_state(ctx.db, zone.id, position=changes.last_id(ctx.db))
            rfc2136.request_full_sync(ctx.db, zone.id)
        detail += f"; rfc2136 {_describe_rfc2136(updated)}"
        if updated.tsig_secret and updated.tsig_secret != zone.tsig_secret:
            detail += ", new secret"
    ctx.log_event(AUDIT, f"zone {zone.name}", detail)
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is saved.", name=zone.name))


def zone_key_add(ctx: Context, zone_id: int) -> str:
    """Allow a TSIG key to transfer the zone: the secret given, or a new one shown on this answer only."""
    zone = _zone(ctx, zone_id)
    key_form = Form.from_request(ctx, "key_name", "key_algorithm", "key_secret", secret=("key_secret",))
    name = key_form.check("key_name", validate.hostname)
    algorithm = key_form["key_algorithm"] or validate.TSIG_ALGORITHMS[0]
    if algorithm not in validate.TSIG_ALGORITHMS:
        key_form.error("key_algorithm", ctx.gettext("Choose one of the algorithms."))
    given = key_form["key_secret"].strip()
    secret = key_form.check("key_secret", validate.tsig_secret) if given else None
    sealed = None
    if key_form.ok:
        if secret is None:
            secret = secrets.new_tsig_secret(algorithm)
        try:
            sealed = sealing.load(ctx.config).seal(secret, remote.transfer_key_context(name))
        except DDServerError:
            key_form.error("key_name", ctx.gettext("No data key is configured ([auth] data_key): run ddserver init."))
    if sealed is not None:
        try:
            zones.add_transfer_key(ctx.db, zone.id, name, algorithm, sealed)
        except Conflict:
            key_form.error("key_name", ctx.gettext("A transfer key of this name exists already."))
    if not key_form.ok:
        return _zone_page(ctx, _edit_form(ctx, zone), zone, status=400, key_form=key_form)
    ctx.log_event(AUDIT, f"zone {zone.name}", f"transfer key {name} added")
    if given:
        return ctx.redirect(f"/admin/zones/{zone.id}", ctx.gettext("The transfer key %(name)s is added.", name=name))
    # A new secret: on this answer only (never stored in the clear, never in a redirect's message).
    return _zone_page(ctx, _edit_form(ctx, zone), zone, new_key=(str(name), str(secret)))


def zone_key_remove(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    name = ctx.form("key_name")
    try:
        zones.remove_transfer_key(ctx.db, zone.id, name)
    except NotFound:  # removed meanwhile, or a form without a name: nothing to do, say so
        return ctx.redirect(f"/admin/zones/{zone.id}", ctx.gettext("The zone has no such transfer key."))
    ctx.log_event(AUDIT, f"zone {zone.name}", f"transfer key {name} removed")
    return ctx.redirect(f"/admin/zones/{zone.id}", ctx.gettext("The transfer key %(name)s is removed.", name=name))


def zone_delete_page(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    return confirm_zone_delete(ctx, zone, f"/admin/zones/{zone.id}", "/admin/zones")


def zone_delete(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    if ctx.form("confirm") != zone.name:
        error = ctx.gettext("Type the zone's name to confirm.")
        return confirm_zone_delete(ctx, zone, f"/admin/zones/{zone.id}", "/admin/zones", error)
    count = zones.delete(ctx.db, zone.id)
    ctx.log_event(AUDIT, f"zone {zone.name}", f"deleted with {count} hosts")
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is deleted.", name=zone.name))


# -- DNSSEC ----------------------------------------------------------------------------------------


def _dnssec_page(ctx: Context, zone: Zone, status: int = 200, error: str = "") -> str:
    on, nsec3param, keys = dnssec_store.state(ctx.db, zone.name)
    return ctx.render(
        "admin/zone_dnssec.html",
        status=status,
        zone=zone,
        on=on,
        nsec3param=nsec3param,
        chained=dnssec.nsec3_chained(bool(zones.transfer_keys(ctx.db, zone.id)), bool(zone.also_notify)),
        keys=keys,
        ds_records=signing.ds_records(ctx.db, zone.name),
        pipe=ctx.config.recursor.backend == "pipe",
        algorithms=list(dnssec.ALGORITHM_NAMES),
        error=error,
    )


def zone_dnssec_page(ctx: Context, zone_id: int) -> str:
    return _dnssec_page(ctx, _zone(ctx, zone_id))


def zone_dnssec(ctx: Context, zone_id: int) -> str:
    """Turn signing on (keys made, DS shown) or off (only once the admin says the DS is gone)."""
    zone = _zone(ctx, zone_id)
    try:
        if ctx.form("state") == "on":
            signing.enable(ctx.db, ctx.config, zone.name, signing.algorithm_of(ctx.form("algorithm", "ecdsa256")))
            ctx.log_event(AUDIT, f"zone {zone.name}", "DNSSEC on")
            message = ctx.gettext("DNSSEC is on for %(name)s: give the parent zone its DS records.", name=zone.name)
        else:
            if ctx.form("ds_removed") != "1":
                error = ctx.gettext("Remove the DS records at the parent first, then confirm that they are gone.")
                return _dnssec_page(ctx, zone, 400, error)
            count = signing.disable(ctx.db, zone.name, ds_removed=True)
            ctx.log_event(AUDIT, f"zone {zone.name}", f"DNSSEC off, {count} keys deleted")
            message = ctx.gettext("DNSSEC is off for %(name)s; its keys are deleted.", name=zone.name)
    except (ValidationError, Conflict, ConfigError) as exc:
        return _dnssec_page(ctx, zone, 400, str(exc))
    return ctx.redirect(f"/admin/zones/{zone.id}/dnssec", message)


# -- hosts -----------------------------------------------------------------------------------------


def host_list(ctx: Context) -> str:
    page, offset = page_args(ctx, PER_PAGE)
    text = ctx.query("q")[:100]
    flagged = ctx.query("flagged") == "1"
    found, total = hosts.search(ctx.db, text=text, flagged=flagged, offset=offset, limit=PER_PAGE)
    return ctx.render(
        "admin/hosts.html", hosts=found, total=total, page=page, pages=_pages(total), q=text, flagged=flagged
    )


def host_action(ctx: Context, host_id: int) -> str:
    try:
        host = hosts.get_by_id(ctx.db, host_id)
    except NotFound:
        raise bottle.HTTPError(404)
    action = ctx.form("action")
    if action == "clear-abuse":
        hosts.set_flags(ctx.db, host.id, abuse=False, reset_faults=True)
    elif action == "block":
        hosts.set_flags(ctx.db, host.id, blocked=True, reason=ctx.form("reason")[: hosts.REASON_MAX] or None)
    elif action == "unblock":
        hosts.set_flags(ctx.db, host.id, blocked=False, reason=None)
    else:
        return ctx.redirect("/admin/hosts", ctx.gettext("Unknown action."), "danger")
    ctx.log_event(AUDIT, f"host {host.name}", action)
    back = safe_next(ctx.form("back"), "/admin/hosts")
    return ctx.redirect(back if back.startswith("/admin/") else "/admin/hosts", ctx.gettext("Saved."))


# -- audit -----------------------------------------------------------------------------------------


def audit_page(ctx: Context) -> str:
    page, offset = page_args(ctx, PER_PAGE)
    entries = audit.recent(ctx.db, offset=offset, limit=PER_PAGE + 1)
    return ctx.render("admin/audit.html", entries=entries[:PER_PAGE], page=page, more=len(entries) > PER_PAGE)


def register(app: bottle.Bottle) -> None:
    admin = {"auth": AuthLevel.ADMIN}
    app.route("/admin", "GET", index, **admin)
    app.route("/admin/users", "GET", user_list, **admin)
    app.route("/admin/users/new", "GET", user_new_page, **admin)
    app.route("/admin/users/new", "POST", user_new, **admin)
    app.route("/admin/users/<user_id:int>", "GET", user_detail, **admin)
    app.route("/admin/users/<user_id:int>/flags", "POST", user_flags, **admin)
    app.route("/admin/users/<user_id:int>/limit", "POST", user_limit, **admin)
    app.route("/admin/users/<user_id:int>/delete", "GET", user_delete_page, **admin)
    app.route("/admin/users/<user_id:int>/delete", "POST", user_delete, **admin)
    app.route("/admin/zones", "GET", zone_list, **admin)
    app.route("/admin/zones/new", "GET", zone_new_page, **admin)
    app.route("/admin/zones/new", "POST", zone_new, **admin)
    app.route("/admin/zones/<zone_id:int>", "GET", zone_edit_page, **admin)
    app.route("/admin/zones/<zone_id:int>", "POST", zone_edit, **admin)
    app.route("/admin/zones/<zone_id:int>/transfer-keys", "POST", zone_key_add, **admin)
    app.route("/admin/zones/<zone_id:int>/transfer-keys/remove", "POST", zone_key_remove, **admin)
    app.route("/admin/zones/<zone_id:int>/delete", "GET", zone_delete_page, **admin)
    app.route("/admin/zones/<zone_id:int>/delete", "POST", zone_delete, **admin)
    app.route("/admin/zones/<zone_id:int>/dnssec", "GET", zone_dnssec_page, **admin)
    app.route("/admin/zones/<zone_id:int>/dnssec", "POST", zone_dnssec, **admin)
    app.route("/admin/zones/<zone_id:int>/approval", "POST", zone_approval, **admin)
    app.route("/admin/hosts", "GET", host_list, **admin)
    app.route("/admin/hosts/<host_id:int>", "POST", host_action, **admin)
    app.route("/admin/audit", "GET", audit_page, **admin)
