"""Rate limits of the interface, counted from facts in the events table (shared by every node)."""

from __future__ import annotations

from typing import Any

from ddserver.store import events

LOGIN_FAILURE = "login-failure"
MAIL_REQUEST = "mail-request"


def login_blocked(ctx: Any, login: str) -> bool:
    """Too many failed logins lately from this address, or for this account name (known or not)."""
    section = ctx.config.interface
    window = section.login_window
    if events.count(ctx.db, LOGIN_FAILURE, f"address:{ctx.client}", window) >= section.login_failures_per_address:
        return True
    account = login.strip().lower()[:200]
    return events.count(ctx.db, LOGIN_FAILURE, f"account:{account}", window) >= section.login_failures_per_account


def login_failed(ctx: Any, login: str) -> None:
    account = login.strip().lower()[:200]
    events.add(ctx.db, LOGIN_FAILURE, f"address:{ctx.client}", client=ctx.client)
    events.add(ctx.db, LOGIN_FAILURE, f"account:{account}", client=ctx.client)


def mail_blocked(ctx: Any) -> bool:
    """Too many sign-ups or reset requests from this address in the last hour."""
    return events.count(ctx.db, MAIL_REQUEST, f"address:{ctx.client}", 3600) >= ctx.config.interface.mail_per_address


def mail_requested(ctx: Any) -> None:
    events.add(ctx.db, MAIL_REQUEST, f"address:{ctx.client}", client=ctx.client)
