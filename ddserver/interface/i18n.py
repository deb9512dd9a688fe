"""Languages of the interface: gettext catalogs under interface/locale, chosen per request.

The order is the user's saved choice, then the language cookie, then the browser's Accept-Language,
then ``[interface] default_language``.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "ddserver"
DEFAULT = "en"
#: Languages with a catalog, and their names as their speakers write them.
LANGUAGES = {"en": "English", "de": "Deutsch"}


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang], fallback=True)


def parse_accept_language(header: str) -> list[str]:
    """The primary language tags of an Accept-Language header, most wanted first."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        tag = tag.strip().lower().split("-")[0]
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose(ctx: Any) -> str:
    """Pick the request's language and install its catalog on the context."""
    from ddserver.interface.web import LANG_COOKIE

    wanted: list[str] = []
    if ctx.user is not None and ctx.user.language:
        wanted.append(ctx.user.language)
    cookie = ctx.request.get_cookie(LANG_COOKIE)
    if cookie:
        wanted.append(cookie)
    wanted += parse_accept_language(ctx.request.headers.get("Accept-Language", ""))
    wanted.append(ctx.config.interface.default_language)
    lang = next((tag for tag in wanted if tag in LANGUAGES), DEFAULT)
    ctx.lang = lang
    ctx.translations = translations(lang)
    return lang


_local = threading.local()


@contextlib.contextmanager
def rendering(catalog: gettext.NullTranslations) -> Iterator[None]:
    """Render templates in this thread with ``catalog`` (mail made off the request, in its language)."""
    _local.catalog = catalog
    try:
        yield
    finally:
        _local.catalog = None


def rendering_catalog() -> gettext.NullTranslations | None:
    """The catalog set by ``rendering`` in this thread, if any."""
    return getattr(_local, "catalog", None)
