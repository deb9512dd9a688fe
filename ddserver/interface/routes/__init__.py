"""The interface's routes, one module per area, and the helpers they share."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ddserver.interface import mail


def send_mail(ctx: Any, to: str, subject: str, template: str, **values: Any) -> bool:
    """Render ``templates/mail/<template>.txt`` in the request's language and send it.

    :returns: False when the SMTP server did not take it.
    """
    body = ctx.site.render_template(f"mail/{template}.txt", ctx=ctx, base_url=ctx.config.http.base_url, **values)
    site_name = ctx.config.interface.site_name
    message = mail.build(ctx.config.mail, to, f"[{site_name}] {subject}", body, site_name)
    return mail.send(ctx.config.mail, message)


#: Longer redirect targets go to the default page (no page of the interface has such a long address).
MAX_TARGET = 2000


def safe_next(target: str, default: str = "/hosts") -> str:
    """``target`` when it is a path on this site, else ``default``: the one check of every redirect target that
    comes from the request (``next`` after login or a language switch, ``back`` of admin forms).

    A local path is one ``/`` followed by neither ``/`` nor ``\\``, in printable ASCII without spaces. Browsers
    trim leading controls and spaces, drop tabs and newlines anywhere and read ``\\`` as ``/``, so anything
    looser can name another site (``/\\evil``, ``/\\t/evil``); the value percent-decoded, as often as it
    decodes, must pass too, so that no later decoding (a proxy, a redirect through ``/login?next=``) can turn
    it into one.
    """
    if not (target.isascii() and len(target) <= MAX_TARGET):
        return default
    layer = target
    while True:
        if not _local_path(layer):
            return default
        decoded = urllib.parse.unquote(layer)
        if decoded == layer:
            return target
        layer = decoded


def _local_path(text: str) -> bool:
    return (
        text[:1] == "/"
        and text[1:2] not in ("/", "\\")
        and all(char.isprintable() and not char.isspace() for char in text)
    )


def password_problem(ctx: Any, password: str, again: str | None = None) -> str | None:
    """What is wrong with a new password, or None."""
    minimum = ctx.config.auth.min_password_length
    if len(password) < minimum:
        return ctx.gettext("Use at least %(n)s characters.", n=minimum)
    if len(password) > 1024:
        return ctx.gettext("Use at most 1024 characters.")
    if again is not None and again != password:
        return ctx.gettext("The two passwords differ.")
    return None


def page_args(ctx: Any, per_page: int = 50) -> tuple[int, int]:
    """The page number asked for (from 1) and its offset."""
    try:
        page = max(1, min(int(ctx.query("page", "1")), 10**6))
    except ValueError:
        page = 1
    return page, (page - 1) * per_page
