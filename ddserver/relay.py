"""Relays to third-party dyndns2 services: the request to send, the reading of the answer and the backoff.

Pure: no sockets, no database. ``store/relays.py`` keeps the relays and their outbox state; the updater's
relay worker (``updater/relay.py``) sends what ``request`` builds and files what ``outcome`` reads.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import urllib.parse
from dataclasses import dataclass

from ddserver import __version__, validate
from ddserver.errors import ValidationError

#: Sent as the User-Agent, in the form Dyn asks of update clients ("company - device - version").
USER_AGENT = f"ddserver - relay - {__version__}"
#: The longest accepted URL, user name and secret (the columns of ``host_relays``).
MAX_URL = 500
MAX_USERNAME = 200
MAX_SECRET = 500


class Family(enum.Enum):
    """Which of the host's addresses a relay sends."""

    BOTH = "both"
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class Verdict(enum.Enum):
    """What an answer means for the relay."""

    #: The third party has the address (``good``, ``nochg``).
    DONE = "done"
    #: Try again later, with a growing wait (a network error, a timeout, ``911``, ``dnserr``, HTTP 5xx).
    RETRY = "retry"
    #: Do not try again until the relay is edited (``badauth``, ``nohost``, ``abuse``...): Dyn's rules for
    #: update clients forbid repeating a request that got one of these.
    STOP = "stop"


#: Answers that end retries until the owner edits the relay.
STOP_CODES = frozenset({"badauth", "nohost", "notfqdn", "numhost", "abuse", "badagent", "!donator", "!yours"})
#: Answers after which Dyn asks clients to wait at least half an hour.
SERVER_TROUBLE = frozenset({"911", "dnserr"})
SERVER_TROUBLE_WAIT = 1800.0
#: Shortest and longest answer codes shown as they are (anything else is shown as an HTTP status).
_CODE_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP GET to send."""

    url: str
    headers: dict[str, str]
    #: The address list sent in ``myip`` (shown on the host's page as what was sent).
    sent: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an answer (or its absence) means."""

    verdict: Verdict
    #: The dyndns2 code (``good``, ``badauth``...), ``http-503`` style for an HTTP error without one,
    #: or ``error`` for a network error or timeout.
    code: str
    #: The rest of the answer line, or the network error (never a secret).
    detail: str = ""


def check_url(text: str) -> str:
    """An update URL: http or https, a host, no credentials, no fragment; the query is kept.

    :raises ValidationError: naming what is wrong.
    """
    url = text.strip()
    if not url:
        raise ValidationError("The update URL is empty.")
    if len(url) > MAX_URL:
        raise ValidationError(f"The update URL is longer than {MAX_URL} characters.")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        raise ValidationError("The update URL is not a valid URL.")
    if parts.scheme not in ("http", "https"):
        raise ValidationError("The update URL must begin with https:// (or http://).")
    if not parts.hostname:
        raise ValidationError("The update URL has no server name.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("Give the user name and secret in their own fields, not in the URL.")
    if parts.fragment:
        raise ValidationError("The update URL may not have a #fragment.")
    if any(ord(c) < 33 or ord(c) > 126 for c in url):
        raise ValidationError("The update URL may not contain spaces or other special characters.")
    return url


def check_remote_name(text: str) -> str:
    """The host name at the third party (a full name, such as ``home.dyndns.org``)."""
    name = validate.hostname(text)
    if "." not in name:
        raise ValidationError(f"'{text}' is not a full host name, such as home.example.net.")
    return name


def check_username(text: str) -> str:
    name = text.strip()
    if not name:
        raise ValidationError("The user name is empty.")
    if len(name) > MAX_USERNAME:
        raise ValidationError(f"The user name is longer than {MAX_USERNAME} characters.")
    if ":" in name or any(ord(c) < 32 for c in name):
        raise ValidationError("The user name may not contain a colon or control characters.")
    return name


def check_secret(text: str) -> str:
    if not text:
        raise ValidationError("The password or token is empty.")
    if len(text) > MAX_SECRET:
        raise ValidationError(f"The password or token is longer than {MAX_SECRET} characters.")
    if any(ord(c) < 32 for c in text):
        raise ValidationError("The password or token may not contain control characters.")
    return text


def check_family(text: str) -> Family:
    try:
        return Family(text.strip().lower() or "both")
    except ValueError:
        raise ValidationError("Choose both, ipv4 or ipv6.")


def addresses(ipv4: str | None, ipv6: str | None, family: Family) -> str:
    """The ``myip`` value: ``v4``, ``v6`` or ``v4,v6`` (the comma list of ddclient and ddserver's own
    updater), within ``family``; empty when the host has no address to send."""
    chosen = []
    if ipv4 and family is not Family.IPV6:
        chosen.append(ipv4)
    if ipv6 and family is not Family.IPV4:
        chosen.append(ipaddress.IPv6Address(ipv6).compressed)
    return ",".join(chosen)


def request(url: str, remote_name: str, username: str, secret: str, myip: str) -> Request:
    """The GET that sets ``remote_name`` to ``myip`` (basic auth, ``hostname=`` and ``myip=`` added to the
    URL's own query)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode({"hostname": remote_name, "myip": myip}, safe=",:")
    full = urllib.parse.urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))
    token = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
    headers = {"Authorization": f"Basic {token}", "User-Agent": USER_AGENT, "Accept": "text/plain"}
    return Request(full, headers, myip)


def outcome(status: int, body: bytes) -> Outcome:
    """Read an HTTP answer: the first line's first word is the dyndns2 code when it is one."""
    text = body[:1024].decode("utf-8", "replace").strip()
    line = text.splitlines()[0].strip() if text else ""
    code, _, rest = line.partition(" ")
    code = code.lower()
    detail = rest.strip()[:200]
    if code in ("good", "nochg"):
        return Outcome(Verdict.DONE, code, detail)
    if code in STOP_CODES:
        return Outcome(Verdict.STOP, code, detail)
    if code in SERVER_TROUBLE:
        return Outcome(Verdict.RETRY, code, detail)
    if status == 401 or status == 403:
        return Outcome(Verdict.STOP, "badauth", f"HTTP {status}")
    if status == 404:
        return Outcome(Verdict.STOP, f"http-{status}", "no update service at this URL")
    shown = line[:_CODE_LENGTH]
    return Outcome(Verdict.RETRY, f"http-{status}", f"unexpected answer: {shown}" if shown else "empty answer")


def redirected(status: int, location: str) -> Outcome:
    """A redirect is not followed (it would take the credentials elsewhere): the URL must be edited."""
    where = urllib.parse.urlsplit(location.strip())
    shown = urllib.parse.urlunsplit((where.scheme, where.netloc.rpartition("@")[2], where.path, "", ""))
    return Outcome(Verdict.STOP, f"http-{status}", f"redirected to {shown[:150]}: use that URL" if shown else "")


def failure(reason: str) -> Outcome:
    """A network error or a timeout: tried again later."""
    return Outcome(Verdict.RETRY, "error", reason[:200])


def backoff(attempts: int, code: str, retry_min: float, retry_max: float) -> float:
    """Seconds before the next try after ``attempts`` failures in a row: doubled each time from ``retry_min``
    up to ``retry_max``, and at least half an hour after ``911``/``dnserr`` (within ``retry_max``)."""
    wait = min(retry_max, retry_min * 2 ** min(max(attempts - 1, 0), 30))
    if code in SERVER_TROUBLE:
        wait = max(wait, min(SERVER_TROUBLE_WAIT, retry_max))
    return wait
