"""Rate limits of the interface, counted from facts in the events table (shared by every node).

Logins follow the OWASP "device cookie" scheme: a browser that logged in to an account gets a signed cookie
naming it, and is then held only to its own failure counter for that account; other clients are held to
the account's counter and their address's. A user name and its e-mail address count as one account.
"""

from __future__ import annotations

import hmac
import secrets as _random
from dataclasses import dataclass
from typing import Any

from ddserver.interface.web import HOST_PREFIX, _sign
from ddserver.store import events, users
from ddserver.store.users import User

LOGIN_FAILURE, MAIL_REQUEST = events.RATE_LIMIT_KINDS
DEVICE_COOKIE = "ddserver_device"
#: A device cookie lasts a year from the browser's last login.
DEVICE_LIFETIME = 365 * 86400


@dataclass(frozen=True)
class Guard:
    """The failure counters one attempt is held to and counts against: (events subject, limit) pairs."""

    counters: tuple[tuple[str, int], ...]

    def blocked(self, ctx: Any) -> bool:
        window = ctx.config.interface.login_window
        return any(events.count(ctx.db, LOGIN_FAILURE, subject, window) >= limit for subject, limit in self.counters)

    def failed(self, ctx: Any, user: User | None = None) -> None:
        """Count a failure (and, with ``user``, on the user's row too), in one transaction whether or not the
        account exists."""

        def run(tx: Any) -> None:
            for subject, _ in self.counters:
                events.add_tx(tx, LOGIN_FAILURE, subject, client=ctx.client)
            if user is not None:
                users.record_login_tx(tx, user.id, ok=False)

        ctx.db.run(run)


def account_subject(login: str, user: User | None) -> str:
    """The counter of an account: the user's id however it was named (name or e-mail), else the text."""
    if user is not None:
        return f"user:{user.id}"
    return "name:" + login.strip().lower()[:200]


def device_cookie(ctx: Any) -> str:
    return (HOST_PREFIX if ctx.secure_cookies else "") + DEVICE_COOKIE


def _signature(ctx: Any, user: User, value: str) -> str:
    # The account's creation time is signed too: a cookie of a deleted account does not pass for another
    # account that gets its id again.
    return _sign(ctx.site.key, "device", f"{value}.{user.created_at}")


def _device(ctx: Any, user: User) -> str | None:
    """The nonce of this browser's device cookie, when it is genuine and names ``user``."""
    raw = ctx.request.get_cookie(device_cookie(ctx)) or ""
    value, _, signature = raw.rpartition(".")
    user_id, _, nonce = value.partition(".")
    if not nonce or user_id != str(user.id) or not hmac.compare_digest(_signature(ctx, user, value), signature):
        return None
    return nonce


def login_guard(ctx: Any, login: str, user: User | None) -> Guard:
    """The counters of a login attempt (by password, or by second factor) as ``login``, found as ``user``."""
    section = ctx.config.interface
    nonce = None if user is None else _device(ctx, user)
    if nonce is not None:
        device = Guard(((f"device:{nonce}", section.login_failures_per_account),))
        # A device locked by its own failures is an unknown client again.
        if not device.blocked(ctx):
            return device
    return Guard(
        (
            (f"address:{ctx.client}", section.login_failures_per_address),
            (account_subject(login, user), section.login_failures_per_account),
        )
    )


def session_guard(ctx: Any) -> Guard:
    """The counter of a logged-in user's password confirmations (change password, e-mail, delete): their
    session's, so that nobody else's failures stop them."""
    return Guard(((f"session:{ctx.session.id}", ctx.config.interface.login_failures_per_account),))


def address_guard(ctx: Any) -> Guard:
    """The counter that sign-ups answered "this name is taken" count against, as failed logins do."""
    return Guard(((f"address:{ctx.client}", ctx.config.interface.login_failures_per_address),))


def trust_device(ctx: Any, user: User) -> None:
    """After a full login: give this browser a device cookie for ``user`` (a new one each time)."""
    value = f"{user.id}.{_random.token_urlsafe(16)}"
    ctx.set_cookie(device_cookie(ctx), f"{value}.{_signature(ctx, user, value)}", max_age=DEVICE_LIFETIME)


def mail_blocked(ctx: Any) -> bool:
    """Too many sign-ups or reset requests from this address in the last hour."""
    return (
        events.count(ctx.db, MAIL_REQUEST, f"address:{ctx.client}", events.MAIL_WINDOW)
        >= ctx.config.interface.mail_per_address
    )


def mail_requested(ctx: Any) -> None:
    events.add(ctx.db, MAIL_REQUEST, f"address:{ctx.client}", client=ctx.client)
