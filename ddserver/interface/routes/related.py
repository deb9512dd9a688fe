"""Related names of a host on its page: add, edit and remove the names that follow its IPv6 prefix (and
optionally its IPv4 address)."""

from __future__ import annotations

import bottle

from ddserver import prefixes, validate
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.interface.forms import Form
from ddserver.interface.routes import hosts as host_routes
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import related
from ddserver.store.hosts import Host

#: Where a new related name goes: one label below the host, or one label below its zone.
BELOW_HOST = "host"
IN_ZONE = "zone"


def _limit(ctx: Context) -> int:
    return ctx.config.dns.max_related_per_host


def _check_rule(ctx: Context, form: Form) -> tuple[str | None, int | None]:
    """The identifier and prefix length of a related-name form, or field errors."""
    prefix_len = form.check("prefix_len", lambda text: prefixes.prefix_len(text or prefixes.DEFAULT_PREFIX_LEN))
    if prefix_len is None:
        return None, None
    form.values["prefix_len"] = str(prefix_len)
    ifid = form.check("ifid", lambda text: prefixes.interface_id(text, prefix_len))
    return ifid, prefix_len


def add(ctx: Context, host_id: int) -> str:
    host = host_routes.own_host(ctx, host_id)
    assert ctx.user is not None
    form = Form.from_request(ctx, "label", "place", "ifid", "prefix_len", "follow_ipv4")
    place = form["place"] if form["place"] in (BELOW_HOST, IN_ZONE) else BELOW_HOST
    # Reserved labels (www, mail, ...) are kept from users at the zone's level, as for hosts.
    reserved = () if ctx.user.is_admin or place == BELOW_HOST else ctx.config.dns.reserved_names
    label = form.check("label", lambda text: validate.label(text, reserved=reserved))
    ifid, prefix_len = _check_rule(ctx, form)
    name = None
    if label is not None:
        name = f"{label}.{host.name if place == BELOW_HOST else host.zone}"
        if len(name) > 253:
            form.error("label", ctx.gettext("The whole name is longer than 253 characters."))
    if form.ok and name is not None and ifid is not None and prefix_len is not None:
        try:
            added = related.add(
                ctx.db,
                host.id,
                name,
                ifid,
                prefix_len=prefix_len,
                follow_ipv4=form["follow_ipv4"] == "1",
                limit=_limit(ctx),
            )
        except LimitReached:
            form.error(
                "_form",
                ctx.gettext(
                    "A host may have %(limit)s related names; remove one you no longer use.", limit=_limit(ctx)
                ),
            )
        except Conflict:
            form.error("label", ctx.gettext("%(name)s is taken; choose another name.", name=name))
        except ValidationError as exc:
            form.error("label", exc.message)
        else:
            ctx.log_event("host", f"host {host.name}", f"related name {added.name} added")
            return ctx.redirect(
                f"/hosts/{host.id}#h-related",
                ctx.gettext("%(name)s is added.", name=validate.to_unicode(added.name)),
            )
    return host_routes.detail_page(ctx, host, status=400, related_form=form)


def _own_related(ctx: Context, host: Host, related_id: int) -> Host:
    found = next((r for r in related.of(ctx.db, host.id) if r.id == related_id), None)
    if found is None:
        raise bottle.HTTPError(404)
    return found


def edit_page(ctx: Context, host_id: int, related_id: int) -> str:
    host = host_routes.own_host(ctx, host_id)
    name = _own_related(ctx, host, related_id)
    form = Form({"ifid": name.ifid, "prefix_len": str(name.prefix_len), "follow_ipv4": "1" if name.follow_ipv4 else ""})
    return ctx.render("host_related.html", host=host, related=name, form=form)


def edit(ctx: Context, host_id: int, related_id: int) -> str:
    host = host_routes.own_host(ctx, host_id)
    name = _own_related(ctx, host, related_id)
    form = Form.from_request(ctx, "ifid", "prefix_len", "follow_ipv4")
    ifid, prefix_len = _check_rule(ctx, form)
    if form.ok and ifid is not None and prefix_len is not None:
        try:
            related.edit(ctx.db, host.id, name.id, ifid, prefix_len=prefix_len, follow_ipv4=form["follow_ipv4"] == "1")
        except NotFound:
            raise bottle.HTTPError(404)
        except ValidationError as exc:
            form.error("ifid", exc.message)
        else:
            return ctx.redirect(
                f"/hosts/{host.id}#h-related", ctx.gettext("%(name)s is saved.", name=validate.to_unicode(name.name))
            )
    return ctx.render("host_related.html", status=400, host=host, related=name, form=form)


def remove(ctx: Context, host_id: int, related_id: int) -> str:
    host = host_routes.own_host(ctx, host_id)
    name = _own_related(ctx, host, related_id)
    try:
        related.remove(ctx.db, host.id, name.id)
    except NotFound:
        raise bottle.HTTPError(404)
    ctx.log_event("host", f"host {host.name}", f"related name {name.name} removed")
    return ctx.redirect(
        f"/hosts/{host.id}#h-related", ctx.gettext("%(name)s is removed.", name=validate.to_unicode(name.name))
    )


def register(app: bottle.Bottle) -> None:
    user = {"auth": AuthLevel.USER}
    app.route("/hosts/<host_id:int>/related", "POST", add, **user)
    app.route("/hosts/<host_id:int>/related/<related_id:int>", "GET", edit_page, **user)
    app.route("/hosts/<host_id:int>/related/<related_id:int>", "POST", edit, **user)
    app.route("/hosts/<host_id:int>/related/<related_id:int>/delete", "POST", remove, **user)
