"""Users' own zones: add one (pending until its parent delegates it to the service), see why it is or is not
served, check now, let other users add hosts in it, delete it."""

from __future__ import annotations

import time

import bottle

from ddserver import validate
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.interface import delegation
from ddserver.interface.forms import Form
from ddserver.interface.routes import confirm_zone_delete
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import ownzones, zones
from ddserver.store.ownzones import ZoneState
from ddserver.store.zones import Zone


def _own_zone(ctx: Context, zone_id: int) -> Zone:
    """The zone if the user brought it (admins may open any user's zone); others get a 404."""
    assert ctx.user is not None
    try:
        zone = zones.get_by_id(ctx.db, zone_id)
    except NotFound:
        raise bottle.HTTPError(404)
    if zone.owner_id is None or (zone.owner_id != ctx.user.id and not ctx.user.is_admin):
        raise bottle.HTTPError(404)
    return zone


def _enabled(ctx: Context) -> bool:
    """Whether this service takes users' zones at all."""
    return bool(ctx.config.zones.nameservers) and ctx.config.zones.max_per_user != 0


def _limit(ctx: Context) -> int | None:
    limit = ctx.config.zones.max_per_user
    return None if limit < 0 else limit


def zone_list(ctx: Context, form: Form | None = None, status: int = 200) -> str:
    assert ctx.user is not None
    owned = ownzones.owned_by(ctx.db, ctx.user.id)
    return ctx.render(
        "zones.html",
        status=status,
        zones=owned,
        states={zone.id: ownzones.state_of(zone) for zone in owned},
        counts=zones.host_counts(ctx.db),
        form=form or Form(),
        enabled=_enabled(ctx),
        limit=_limit(ctx),
        nameservers=ctx.config.zones.nameservers,
    )


def add(ctx: Context) -> str:
    assert ctx.user is not None
    form = Form.from_request(ctx, "name")
    if not _enabled(ctx):
        form.error("name", ctx.gettext("This service does not take zones of users."))
        return zone_list(ctx, form, status=400)
    name = form.check("name", validate.zone_name)
    if name is None:
        return zone_list(ctx, form, status=400)
    contact = ctx.config.zones.hostmaster
    approved = not ctx.config.zones.approval or ctx.user.is_admin
    zone: Zone | None = None
    try:
        zone = ownzones.add(
            ctx.db,
            ctx.user.id,
            name,
            ctx.config.zones.nameservers,
            validate.hostmaster(contact) if contact else f"hostmaster.{name}",
            limit=ctx.config.zones.max_per_user,
            approved=approved,
        )
    except LimitReached:
        form.error("name", ctx.gettext("You have reached your limit of %(limit)s zones.", limit=_limit(ctx)))
    except Conflict:
        form.error("name", ctx.gettext("%(name)s is taken, or overlaps a zone of this service.", name=name))
    except ValidationError as exc:
        form.error("name", exc.message)
    if zone is None:
        return zone_list(ctx, form, status=400)
    ctx.log_event("zone", f"zone {zone.name}", "added" + ("" if approved else ", awaiting approval"))
    zone = delegation.check_and_record(ctx.db, ctx.config.zones, zone)
    return ctx.redirect(f"/zones/{zone.id}", ctx.gettext("The zone %(name)s is added.", name=zone.name))


def detail(ctx: Context, zone_id: int, status: int = 200, grant_form: Form | None = None) -> str:
    zone = _own_zone(ctx, zone_id)
    return ctx.render(
        "zone.html",
        status=status,
        zone=zone,
        state=ownzones.state_of(zone),
        states=ZoneState,
        grace_ends=(
            zone.delegation_failing_since + ctx.config.zones.grace_period
            if zone.delegation_failing_since is not None
            else None
        ),
        host_count=zones.host_counts(ctx.db).get(zone.id, 0),
        grantees=ownzones.grantees(ctx.db, zone.id),
        grant_form=grant_form or Form(),
    )


#: Seconds between two checks of one zone asked for from its page: each check sends queries to the servers
#: of a domain the user chose.
CHECK_INTERVAL = 10


def check_now(ctx: Context, zone_id: int) -> str:
    zone = _own_zone(ctx, zone_id)
    if zone.delegation_checked_at is not None and 0 <= time.time() - zone.delegation_checked_at < CHECK_INTERVAL:
        return ctx.redirect(
            f"/zones/{zone.id}", ctx.gettext("Checked a moment ago: try again in a few seconds."), "warning"
        )
    checked = delegation.check_and_record(ctx.db, ctx.config.zones, zone)
    if checked.delegation_error:
        return ctx.redirect(f"/zones/{zone.id}", ctx.gettext("The delegation was not found: see why below."), "warning")
    return ctx.redirect(f"/zones/{zone.id}", ctx.gettext("The delegation is in place."))


def grant(ctx: Context, zone_id: int) -> str:
    zone = _own_zone(ctx, zone_id)
    form = Form.from_request(ctx, "username")
    username = form["username"].strip()[:64]
    if not username:
        form.error("username", ctx.gettext("Give a user name."))
    else:
        try:
            ownzones.grant(ctx.db, zone.id, username)
        except NotFound:
            form.error("username", ctx.gettext("There is no user %(name)s.", name=username))
        except Conflict:
            form.error("username", ctx.gettext("%(name)s may add hosts here already.", name=username))
    if not form.ok:
        return detail(ctx, zone.id, status=400, grant_form=form)
    ctx.log_event("zone", f"zone {zone.name}", f"hosts allowed for {username}")
    return ctx.redirect(f"/zones/{zone.id}", ctx.gettext("%(name)s may add hosts here now.", name=username))


def revoke(ctx: Context, zone_id: int, user_id: int) -> str:
    zone = _own_zone(ctx, zone_id)
    if ownzones.revoke(ctx.db, zone.id, user_id):
        ctx.log_event("zone", f"zone {zone.name}", f"hosts no longer allowed for user {user_id}")
    return ctx.redirect(f"/zones/{zone.id}", ctx.gettext("Saved."))


def delete_page(ctx: Context, zone_id: int) -> str:
    zone = _own_zone(ctx, zone_id)
    return confirm_zone_delete(ctx, zone, f"/zones/{zone.id}", f"/zones/{zone.id}")


def delete(ctx: Context, zone_id: int) -> str:
    zone = _own_zone(ctx, zone_id)
    if ctx.form("confirm") != zone.name:
        error = ctx.gettext("Type the zone's name to confirm.")
        return confirm_zone_delete(ctx, zone, f"/zones/{zone.id}", f"/zones/{zone.id}", error)
    try:
        count = zones.delete(ctx.db, zone.id)
    except NotFound:
        raise bottle.HTTPError(404)
    ctx.log_event("zone", f"zone {zone.name}", f"deleted with {count} hosts")
    return ctx.redirect("/zones", ctx.gettext("The zone %(name)s is deleted.", name=zone.name))


def register(app: bottle.Bottle) -> None:
    user = {"auth": AuthLevel.USER}
    app.route("/zones", "GET", zone_list, **user)
    app.route("/zones", "POST", add, **user)
    app.route("/zones/<zone_id:int>", "GET", detail, **user)
    app.route("/zones/<zone_id:int>/check", "POST", check_now, **user)
    app.route("/zones/<zone_id:int>/users", "POST", grant, **user)
    app.route("/zones/<zone_id:int>/users/<user_id:int>/remove", "POST", revoke, **user)
    app.route("/zones/<zone_id:int>/delete", "GET", delete_page, **user)
    app.route("/zones/<zone_id:int>/delete", "POST", delete, **user)
