"""Update and API tokens of the logged-in user: list (name, scopes, hosts, expiry, last use), make one (shown
once), revoke. ``read_token_form`` checks a new token for this page and for the JSON API alike."""

from __future__ import annotations

from dataclasses import dataclass

import bottle

from ddserver import validate
from ddserver.errors import Conflict, LimitReached, ValidationError
from ddserver.interface.forms import Form
from ddserver.interface.web import AuthLevel, Context
from ddserver.store import hosts, tokens, zones
from ddserver.store.common import now
from ddserver.store.tokens import Scope

#: Longest name of a token.
MAX_NAME = 64
#: Longest lifetime that can be chosen (days); no expiry is chosen by leaving it empty.
MAX_DAYS = 3650
TARGETS = ("all", "zone", "hosts")


@dataclass(frozen=True)
class NewToken:
    """A checked request for a token."""

    name: str
    scopes: frozenset[Scope]
    zone_id: int | None
    host_ids: tuple[int, ...] | None
    expires_at: int | None


def token_form(ctx: Context) -> Form:
    """The token form as posted: text fields, and ``scopes`` and ``hosts`` as lists."""
    form = Form.from_request(ctx, "name", "target", "zone", "expires_days")
    form.values["scopes"] = [s.strip() for s in ctx.request.forms.getall("scopes") if isinstance(s, str)]
    form.values["hosts"] = [h.strip() for h in ctx.request.forms.getall("hosts") if isinstance(h, str)]
    return form


def read_token_form(ctx: Context, form: Form, limit: tokens.Grant | None = None) -> NewToken | None:
    """Check a token request: ``name``, ``scopes`` (a list of scope names), ``target`` (all, zone, hosts),
    ``zone`` (a zone's name), ``hosts`` (a list of host names) and ``expires_days`` (empty: no expiry).

    :param limit: the token that asks for this one (the JSON API): the new one may do no more than it, and
        lasts no longer.
    :returns: the token to make, or None with the errors in ``form``.
    """
    assert ctx.user is not None
    name = " ".join(str(form["name"]).split())
    if not name:
        form.error("name", ctx.gettext("Give the token a name."))
    elif len(name) > MAX_NAME or not name.isprintable():
        form.error("name", ctx.gettext("Use at most %(n)s printable characters.", n=MAX_NAME))
    form.values["name"] = name
    known = {s.value: s for s in Scope}
    asked = form["scopes"] if isinstance(form["scopes"], list) else []
    scopes = frozenset(known[s] for s in asked if s in known)
    if not scopes or len(scopes) != len(set(asked)):
        form.error("scopes", ctx.gettext("Choose what the token may do."))
    elif limit is not None and not scopes <= limit.scopes:
        form.error("scopes", ctx.gettext("A token cannot make a token that may do more than itself."))
    target = form["target"] or "all"
    zone_id: int | None = None
    host_ids: tuple[int, ...] | None = None
    if target == "zone":
        usable = {z.name: z for z in zones.usable_by(ctx.db, ctx.user.id, ctx.user.is_admin)}
        zone = usable.get(_ascii(str(form["zone"])))
        if zone is None:
            form.error("zone", ctx.gettext("Choose one of the zones."))
        else:
            zone_id = zone.id
    elif target == "hosts":
        own = {h.name: h for h in hosts.list_for_user(ctx.db, ctx.user.id)}
        chosen = form["hosts"] if isinstance(form["hosts"], list) else []
        found = [own.get(_ascii(str(name))) for name in chosen]
        if not chosen:
            form.error("hosts", ctx.gettext("Choose at least one host."))
        elif any(h is None for h in found):
            form.error("hosts", ctx.gettext("Choose among your own hosts."))
        else:
            host_ids = tuple(sorted({h.id for h in found if h is not None}))
    elif target != "all":
        form.error("target", ctx.gettext("Choose which hosts the token covers."))
    if limit is not None and not limit.all_hosts and form.ok:
        form.error("target", ctx.gettext("Only a token for all your hosts can make tokens."))
    expires_at = None
    days = str(form["expires_days"]).strip()
    if days:
        try:
            count = int(days)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_DAYS:
            form.error("expires_days", ctx.gettext("Give a number of days from 1 to %(n)s, or nothing.", n=MAX_DAYS))
        else:
            expires_at = now() + count * 86400
    if limit is not None and limit.expires_at is not None and (expires_at is None or expires_at > limit.expires_at):
        form.error("expires_days", ctx.gettext("A token cannot make a token that lasts longer than itself."))
    if not form.ok:
        return None
    return NewToken(name, scopes, zone_id, host_ids, expires_at)


def _ascii(name: str) -> str:
    try:
        return validate.hostname(name)
    except (ValidationError, AttributeError):
        return ""


def make_token(ctx: Context, form: Form, wanted: NewToken) -> tuple[str, int] | None:
    """Store a checked token request. :returns: the token and its id, or None with the error in ``form``."""
    assert ctx.user is not None
    try:
        made = tokens.create_grant(
            ctx.db,
            ctx.user.id,
            wanted.name,
            wanted.scopes,
            zone_id=wanted.zone_id,
            host_ids=wanted.host_ids,
            expires_at=wanted.expires_at,
        )
    except Conflict:
        form.error("name", ctx.gettext("You have a token of this name already."))
        return None
    except LimitReached:
        form.error("_form", ctx.gettext("You have %(n)s tokens, the most there can be. Revoke one first.",
                                        n=tokens.MAX_PER_USER))  # fmt: skip
        return None
    except ValidationError:
        form.error("hosts", ctx.gettext("Choose among your own hosts."))
        return None
    ctx.log_event("account", f"user {ctx.user.username}", f"token {wanted.name!r} created")
    return made


def _page(ctx: Context, status: int = 200, form: Form | None = None, secret: str | None = None) -> str:
    assert ctx.user is not None
    return ctx.render(
        "tokens.html",
        status=status,
        tokens=tokens.list_grants(ctx.db, ctx.user.id),
        form=form or Form({"target": "all", "scopes": ["update"], "hosts": []}),
        secret=secret,
        zones=zones.usable_by(ctx.db, ctx.user.id, ctx.user.is_admin),
        hosts=hosts.list_for_user(ctx.db, ctx.user.id),
        now=now(),
        update_url=ctx.config.update_url,
        max_days=MAX_DAYS,
    )


def token_list(ctx: Context) -> str:
    return _page(ctx)


def create(ctx: Context) -> str:
    form = token_form(ctx)
    wanted = read_token_form(ctx, form)
    made = make_token(ctx, form, wanted) if wanted is not None else None
    if made is None:
        return _page(ctx, 400, form)
    return _page(ctx, 201, secret=made[0])


def revoke(ctx: Context, token_id: int) -> str:
    assert ctx.user is not None
    if not tokens.revoke(ctx.db, ctx.user.id, token_id):
        raise bottle.HTTPError(404)
    ctx.log_event("account", f"user {ctx.user.username}", f"token {token_id} revoked")
    return ctx.redirect("/tokens", ctx.gettext("The token is revoked."))


def register(app: bottle.Bottle) -> None:
    user = {"auth": AuthLevel.USER}
    app.route("/tokens", "GET", token_list, **user)
    app.route("/tokens", "POST", create, **user)
    app.route("/tokens/<token_id:int>/revoke", "POST", revoke, **user)
