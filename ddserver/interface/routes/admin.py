"""Administration: users, zones, hosts across users, and the audit view. Every action enters the audit trail."""

from __future__ import annotations

import math

import bottle

from ddserver import validate
from ddserver.errors import Conflict, LimitReached, NotFound, ValidationError
from ddserver.interface.forms import Form
from ddserver.interface.routes import page_args, send_mail
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import audit, hosts, sessions, tokens, users, zones
from ddserver.store.users import User
from ddserver.store.zones import Zone

PER_PAGE = 50
AUDIT = "admin"


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
    found, total = users.search(ctx.db, text, offset=offset, limit=PER_PAGE)
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
        if value < -1:
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
    try:
        count = users.delete(ctx.db, user.id)
    except LimitReached:
        return ctx.redirect(
            f"/admin/users/{user.id}",
            ctx.gettext("This is the last administrator: make another user admin first."),
            "danger",
        )
    ctx.log_event(AUDIT, f"user {user.username}", f"deleted with {count} hosts")
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
    return ctx.render("admin/zones.html", zones=zones.list_all(ctx.db), counts=zones.host_counts(ctx.db))


def _zone_form(ctx: Context, form: Form, new: bool) -> dict[str, object] | None:
    """Check the zone form; returns the values for the store, or None with errors on the form."""
    values: dict[str, object] = {}
    if new:
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
    values["is_public"] = form["is_public"] == "1"
    values["description"] = form["description"][:200]
    allowed: list[int] = []
    for name in form["allowed_users"].replace(",", " ").split():
        try:
            allowed.append(users.get_by_name(ctx.db, name).id)
        except NotFound:
            form.error("allowed_users", ctx.gettext("There is no user %(name)s.", name=name))
    values["allowed"] = allowed
    return values if form.ok else None


_ZONE_FIELDS = ("name", "nameservers", "hostmaster", "ttl", "is_public", "description", "allowed_users")


def zone_new_page(ctx: Context) -> str:
    return ctx.render("admin/zone_form.html", form=Form({"is_public": "1"}), zone=None)


def zone_new(ctx: Context) -> str:
    form = Form.from_request(ctx, *_ZONE_FIELDS)
    values = _zone_form(ctx, form, new=True)
    if values is None:
        return ctx.render("admin/zone_form.html", status=400, form=form, zone=None)
    allowed = values.pop("allowed")
    try:
        zone = zones.add(
            ctx.db,
            str(values["name"]),
            values["nameservers"],  # type: ignore[arg-type]
            str(values["hostmaster"]),
            ttl=values["ttl"],  # type: ignore[arg-type]
            is_public=bool(values["is_public"]),
            description=str(values["description"]),
        )
    except Conflict as exc:
        form.error("name", exc.message)
        return ctx.render("admin/zone_form.html", status=400, form=form, zone=None)
    zones.set_allowed_users(ctx.db, zone.id, allowed)  # type: ignore[arg-type]
    ctx.log_event(AUDIT, f"zone {zone.name}", "added")
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is added.", name=zone.name))


def zone_edit_page(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    allowed = [users.get(ctx.db, uid).username for uid in zones.allowed_users(ctx.db, zone.id)]
    form = Form(
        {
            "nameservers": " ".join(zone.nameservers),
            "hostmaster": validate.rname_to_email(zone.hostmaster),
            "ttl": "" if zone.ttl is None else str(zone.ttl),
            "is_public": "1" if zone.is_public else "",
            "description": zone.description,
            "allowed_users": " ".join(sorted(allowed)),
        }
    )
    return ctx.render("admin/zone_form.html", form=form, zone=zone)


def zone_edit(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    form = Form.from_request(ctx, *_ZONE_FIELDS)
    values = _zone_form(ctx, form, new=False)
    if values is None:
        return ctx.render("admin/zone_form.html", status=400, form=form, zone=zone)
    allowed = values.pop("allowed")
    zones.update(ctx.db, zone.id, **values)
    zones.set_allowed_users(ctx.db, zone.id, allowed)  # type: ignore[arg-type]
    ctx.log_event(AUDIT, f"zone {zone.name}", "edited")
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is saved.", name=zone.name))


def zone_delete_page(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    return ctx.render("admin/zone_delete.html", zone=zone, host_count=zones.host_counts(ctx.db).get(zone.id, 0))


def zone_delete(ctx: Context, zone_id: int) -> str:
    zone = _zone(ctx, zone_id)
    if ctx.form("confirm") != zone.name:
        return ctx.render(
            "admin/zone_delete.html",
            status=400,
            zone=zone,
            host_count=zones.host_counts(ctx.db).get(zone.id, 0),
            error=ctx.gettext("Type the zone's name to confirm."),
        )
    count = zones.delete(ctx.db, zone.id)
    ctx.log_event(AUDIT, f"zone {zone.name}", f"deleted with {count} hosts")
    return ctx.redirect("/admin/zones", ctx.gettext("The zone %(name)s is deleted.", name=zone.name))


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
        hosts.set_flags(ctx.db, host.id, blocked=True, reason=ctx.form("reason")[:200] or None)
    elif action == "unblock":
        hosts.set_flags(ctx.db, host.id, blocked=False, reason=None)
    else:
        return ctx.redirect("/admin/hosts", ctx.gettext("Unknown action."), "danger")
    ctx.log_event(AUDIT, f"host {host.name}", action)
    back = ctx.form("back")
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
    app.route("/admin/zones/<zone_id:int>/delete", "GET", zone_delete_page, **admin)
    app.route("/admin/zones/<zone_id:int>/delete", "POST", zone_delete, **admin)
    app.route("/admin/hosts", "GET", host_list, **admin)
    app.route("/admin/hosts/<host_id:int>", "POST", host_action, **admin)
    app.route("/admin/audit", "GET", audit_page, **admin)
