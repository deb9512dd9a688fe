"""The interface's routes, one module per area, and the helpers they share."""

from __future__ import annotations

import gettext
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from ddserver.interface import i18n, mail

_outbox_lock = threading.Lock()


def deliver(site: Any, catalog: gettext.NullTranslations, to: str, subject: str, template: str, **values: Any) -> bool:
    """Render ``templates/mail/<template>.txt`` with ``catalog`` and send it (in any thread).

    :returns: False when the SMTP server did not take it.
    """
    with i18n.rendering(catalog):
        body = site.render_template(f"mail/{template}.txt", base_url=site.config.http.base_url, **values)
    site_name = site.config.interface.site_name
    message = mail.build(site.config.mail, to, f"[{site_name}] {subject}", body, site_name)
    return mail.send(site.config.mail, message)


def send_mail(ctx: Any, to: str, subject: str, template: str, **values: Any) -> bool:
    """Render ``templates/mail/<template>.txt`` in the request's language and send it now.

    :returns: False when the SMTP server did not take it.
    """
    return deliver(ctx.site, ctx.translations, to, subject, template, **values)


def outbox(site: Any) -> mail.Outbox:
    """The site's background mail sender."""
    box = site.extra.get("outbox")
    if box is None:
        with _outbox_lock:
            box = site.extra.setdefault("outbox", mail.Outbox())
    return box


def later(ctx: Any, job: Callable[[], None]) -> None:
    """Run ``job`` (which reads the database, makes tokens, sends mail) after the answer, off the request:
    what a request does must not depend on whether an account exists."""
    outbox(ctx.site).submit(job)


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


def confirm_zone_delete(ctx: Any, zone: Any, base: str, cancel: str, error: str | None = None) -> str:
    """The page that has the zone's name typed before the zone and its hosts are deleted, for the admin and a
    zone's owner alike: ``base`` is the zone's address, ``cancel`` where to go back; with ``error``, a 400."""
    from ddserver.store import zones

    values: dict[str, Any] = {"error": error} if error is not None else {}
    return ctx.render(
        "zone_delete.html",
        status=400 if error is not None else 200,
        zone=zone,
        base=base,
        cancel=cancel,
        host_count=zones.host_counts(ctx.db).get(zone.id, 0),
        **values,
    )
