"""The origin a browser gives a redirect target, after the WHATWG URL standard's parser (https://url.spec.whatwg.org).

Only what decides the origin of a reference resolved against a special base URL (``https://site.example/``)
is modelled: leading and trailing C0 controls and spaces trimmed, tabs and newlines removed anywhere, a scheme
read before anything else, backslashes taken as slashes, and any number of slashes before an authority.
tests/e2e/test_redirect_origins.py checks this model against Chromium's own parser.
"""

from __future__ import annotations

import itertools
import re
import urllib.parse
from collections.abc import Iterator, Sequence

import idna

BASE = ("https", "site.example")
#: Schemes the standard calls special: their URLs always have a host, and a backslash is a slash in them.
SPECIAL = {"ftp", "file", "http", "https", "ws", "wss"}
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")

#: Values browsers resolve to another origin, or that cannot go into a Location header.
LEAVING = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "\x00//evil.example",
    "\x1f/\\evil.example",
    "https://evil.example",
    "https:/\\evil.example",
    "https:\\\\evil.example",
    "http:evil.example",
    "HTTPS://evil.example",
    "ht\ttps://evil.example",
    "javascript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
]
#: Values that are harmless in a browser but break the rules (whitespace, controls, encoded slashes).
REFUSED = [
    "",
    "evil.example",
    "hosts",
    "/\tevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%5c%5cevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%09/evil.example",
    "/%0d%0aSet-Cookie:%20a=b",
    "/hosts\r\nSet-Cookie: a=b",
    "/hosts\x00",
    "/hosts\x7f",
    "/ho sts",
    "/hosts\u00a0",
    "/hosts\u2028",
    "/hosts\u200b",
    "/\u3000/evil.example",
    "/hosts/ü",
    "/" + "a" * 3000,
]
LOCAL = [
    "/",
    "/hosts",
    "/hosts/12",
    "/hosts/12?x=1&y=%2F",
    "/admin/hosts?q=home&page=2",
    "/account#password",
    "/hosts/%C3%BC",
    "/a/b/../c",
]

#: Pieces of URLs that change how browsers parse them, plain and percent-encoded.
PIECES = [
    *("/", "\\", "\t", "\n", "\r", " ", "\x00", "\x1f", "\x7f", "\u3000", "\u200b", ":", "@", ".", "?", "#"),
    *("%", "%2F", "%2f", "%5C", "%09", "%0A", "%25", "%252F", "https:", "http:", "javascript:"),
    *("evil.example", "site.example", "hosts", "e", "1"),
]


def origin(reference: str, base: tuple[str, str] = BASE) -> tuple[str, str] | None:
    """The (scheme, host) a browser navigates to for ``reference`` on a page of ``base``; None when the
    result has no host (``javascript:``, ``data:``, an opaque URL) or the parser fails."""
    text = reference.strip(_C0_OR_SPACE)
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme = _SCHEME.match(text)
    if scheme is not None:
        name = scheme.group()[:-1].lower()
        rest = text[scheme.end() :]
        if name not in SPECIAL:
            return None
        if name != base[0]:
            # "special authority slashes state": whatever follows is an authority, slashes or not.
            return _authority(name, rest)
        # "special relative or authority state": only two slashes start an authority, else it is relative.
        if rest.startswith("//"):
            return _authority(name, rest)
        text = rest
    # "relative state" then "relative slash state", where a backslash counts as a slash (special base).
    if text[:1] in ("/", "\\") and text[1:2] in ("/", "\\"):
        return _authority(base[0], text)
    return base


def _authority(scheme: str, text: str) -> tuple[str, str] | None:
    # "special authority ignore slashes state" skips every slash and backslash, then the authority runs to
    # the first of / \ ? #; its host follows the last @ and precedes the port.
    text = text.lstrip("/\\")
    end = min((i for i in (text.find(c) for c in "/\\?#") if i >= 0), default=len(text))
    host = text[:end].rpartition("@")[2]
    if not host.startswith("["):
        host = host.partition(":")[0]
    try:
        # Hosts are mapped as IDNA's UTS #46 says (case folded, zero-width characters dropped).
        host = idna.uts46_remap(urllib.parse.unquote(host), std3_rules=False, transitional=False)
    except (idna.IDNAError, ValueError):
        return None
    return (scheme, host) if host else None


def combinations(pieces: Sequence[str], most: int) -> Iterator[str]:
    """Every string of up to ``most`` pieces, each after a leading slash and without one."""
    for count in range(most + 1):
        for chosen in itertools.product(pieces, repeat=count):
            text = "".join(chosen)
            yield text
            yield "/" + text
