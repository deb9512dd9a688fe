"""The dyndns2 protocol, pure: credentials, hostnames and addresses from a request, and the answer codes.

Nothing here touches a socket, the database or Bottle; the service and the web shell call these functions.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ddserver import prefixes, validate
from ddserver.errors import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: More hostnames than this in one request are answered ``numhost``.
MAX_HOSTNAMES = 20
#: The realm routers show when they ask for credentials.
REALM = "ddserver"
#: Prefix of the name that carries ACME DNS-01 challenges.
ACME_LABEL = "_acme-challenge"
#: Longest TXT value accepted for an ACME challenge (a challenge is 43 characters).
MAX_TXT_LENGTH = validate.MAX_TXT_LENGTH


class Code(enum.Enum):
    """The dyndns2 answer codes, one per hostname line."""

    GOOD = "good"
    NOCHG = "nochg"
    BADAUTH = "badauth"
    NOTFQDN = "notfqdn"
    NOHOST = "nohost"
    NUMHOST = "numhost"
    ABUSE = "abuse"
    BADAGENT = "badagent"
    DNSERR = "dnserr"
    SERVER_ERROR = "911"

    @property
    def http_status(self) -> int:
        """The HTTP status sent with this code (see ``HTTP_STATUS``)."""
        return HTTP_STATUS.get(self, 200)

    @property
    def is_client_fault(self) -> bool:
        """A request answered with this code counts against the host's fault limit."""
        return self in _CLIENT_FAULTS


# Everything but badauth is sent with 200: ddclient reads the body of 2xx answers only and treats 401
# as "authorization failed"; inadyn likewise looks for the code in a 200 body. Other statuses would hide
# the code from both.
HTTP_STATUS = {Code.BADAUTH: 401}
_CLIENT_FAULTS = frozenset({Code.NOTFQDN, Code.NOHOST, Code.NUMHOST, Code.BADAGENT})


class Family(enum.IntEnum):
    """An address family, as the number people know it by."""

    IPV4 = 4
    IPV6 = 6


@dataclass(frozen=True, slots=True)
class Answer:
    """One line of a dyndns2 reply: a code, and for good/nochg the host's addresses after the request."""

    code: Code
    addresses: tuple[str, ...] = ()

    def line(self) -> str:
        """``good 192.0.2.1``, ``nochg 192.0.2.1,2001:db8::1`` or a bare code."""
        if self.addresses and self.code in (Code.GOOD, Code.NOCHG):
            return f"{self.code.value} {','.join(self.addresses)}"
        return self.code.value


def render(answers: Sequence[Answer]) -> tuple[int, str]:
    """The HTTP status and body of a reply: one line per answer, and 401 if any line is badauth."""
    status = max((answer.code.http_status for answer in answers), default=200)
    return status, "".join(answer.line() + "\n" for answer in answers)


# -- credentials ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A login (host FQDN or user name, lower-case) and the secret presented with it."""

    login: str
    secret: str


#: Query parameters that routers which only build URLs use for credentials, tried in order.
CREDENTIAL_PARAMETERS = (("username", "password"), ("user", "pass"))


def parse_basic(header: str | None) -> Credentials | None:
    """Credentials from an ``Authorization: Basic`` header, or None when there are none or they are malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    login, sep, secret = text.partition(":")
    if not sep or not login or not secret:
        return None
    return Credentials(login.strip().lower(), secret)


def credentials(header: str | None, params: Mapping[str, str]) -> Credentials | None:
    """Basic auth first, else ``username``/``password`` or ``user``/``pass`` from the query."""
    found = parse_basic(header)
    if found is not None:
        return found
    for login_key, secret_key in CREDENTIAL_PARAMETERS:
        login, secret = params.get(login_key, "").strip(), params.get(secret_key, "")
        if login and secret:
            return Credentials(login.lower(), secret)
    return None


# -- hostnames --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hostname:
    """One hostname of a request: as sent, and its normalised form (None when it is not a valid FQDN)."""

    text: str
    name: str | None


# Routers send the same names from the same addresses every few minutes: the parsers below are pure and
# their results immutable, so each process keeps the recent ones (a bounded cache: a flood of new strings
# only evicts).
_PARSED = 16384


@functools.lru_cache(maxsize=_PARSED)
def parse_hostname(text: str) -> Hostname:
    """Normalise one hostname; a name with fewer than three labels cannot be a host below a zone."""
    try:
        name = validate.hostname(text)
    except ValidationError:
        return Hostname(text, None)
    return Hostname(text, name if name.count(".") >= 2 else None)


def parse_hostnames(value: str | None) -> tuple[Hostname, ...]:
    """The comma-separated ``hostname`` parameter (empty items are skipped); empty means none given."""
    if not value:
        return ()
    return tuple(parse_hostname(part) for part in value.split(",") if part.strip())


def strip_acme_label(name: str) -> str:
    """``_acme-challenge.home.dyn.example.org`` (as acme.sh passes it) becomes ``home.dyn.example.org``."""
    prefix = ACME_LABEL + "."
    return name[len(prefix) :] if name.lower().startswith(prefix) else name


# -- addresses --------------------------------------------------------------------------------------


class BadAddress(ValidationError):
    """The request carries an address that is not a valid IPv4 or IPv6 address."""


@functools.lru_cache(maxsize=_PARSED)
def parse_address(text: str) -> IPAddress:
    """One address of either family; IPv4-mapped IPv6 becomes IPv4.

    :raises BadAddress: when it is neither (not cached).
    """
    try:
        return validate.ip_address(text)
    except ValidationError as exc:
        raise BadAddress(exc.message)


@functools.lru_cache(maxsize=_PARSED)
def _host_address(text: str) -> IPAddress | None:
    """An address to publish, or None for the unspecified one (a router that has no address of that family:
    as Dyn does, the best guess is used instead).

    :raises BadAddress: when it is not an address, or one no host can have (multicast, reserved).
    """
    address = parse_address(text)
    if address.is_unspecified:
        return None
    try:
        validate.check_host_address(address)
    except ValidationError as exc:
        raise BadAddress(exc.message)
    return address


@functools.lru_cache(maxsize=_PARSED)
def normalise_client(address: str) -> IPAddress | None:
    """The client's address from the connection or a proxy header, or None when it is not an address."""
    try:
        return parse_address(address)
    except BadAddress:
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """What a request asks for each family: set it (to an address, or None to clear it), or leave it."""

    ipv4: str | None = None
    ipv6: str | None = None
    set_ipv4: bool = False
    set_ipv6: bool = False
    #: The IPv6 prefix the request carries (``2001:db8:1234:5600::/56``) for the host's related names, or None.
    ipv6_prefix: str | None = None

    def apply(self, ipv4: str | None, ipv6: str | None) -> tuple[str | None, str | None]:
        """The addresses a host with ``ipv4``/``ipv6`` has after this request."""
        return (self.ipv4 if self.set_ipv4 else ipv4, self.ipv6 if self.set_ipv6 else ipv6)


# Parameter names per family, besides the comma list in ``myip``. Router URL templates use all of these.
IPV4_PARAMETERS = ("myipv4", "ipv4", "myip4", "ip4")
IPV6_PARAMETERS = ("myipv6", "ipv6", "myip6", "ip6")
#: Parameter names of an IPv6 prefix for related names: ``ip6lanprefix`` is what a FRITZ!Box URL's
#: ``<ip6lanprefix>`` is usually given as (and do.de's FlexDNS takes), ``ipv6prefix`` is dynv6's,
#: ``myipv6prefix`` follows ``myipv6``; ``ip6prefix`` and ``ipprefix`` are seen in hand-made URLs.
PREFIX_PARAMETERS = ("myipv6prefix", "ipv6prefix", "ip6lanprefix", "ip6prefix", "ipprefix")


@functools.lru_cache(maxsize=_PARSED)
def parse_prefix(text: str) -> str:
    """An IPv6 prefix from a request, as stored (``2001:db8:1234:5600::/56``).

    :raises BadAddress: when it is not one (not cached).
    """
    try:
        return str(prefixes.parse_prefix(text))
    except ValidationError as exc:
        raise BadAddress(exc.message)


def _first(params: Mapping[str, str], names: Iterable[str]) -> str:
    for name in names:
        value = params.get(name, "").strip()
        if value:
            return value
    return ""


def parse_target(params: Mapping[str, str], client: IPAddress | None) -> Target:
    """The addresses an update asks for.

    ``myip`` is a comma list of at most one address per family; ``myipv4``/``myipv6`` (and their
    aliases) name one family each. With no address at all the client's address is used, for its family
    only, unless the request carries an IPv6 prefix (``PREFIX_PARAMETERS``): a prefix alone changes the
    related names only. ``offline=YES`` clears both families. Empty items (a Fritz!Box leaves ``<ip6addr>``
    empty on an IPv4-only line) and the unspecified addresses (``0.0.0.0``, ``::``) are skipped.

    :raises BadAddress: for an address that is not valid or cannot be a host's (multicast, reserved), two
        of one family, or a prefix that is not an IPv6 prefix.
    """
    if params.get("offline", "").strip().lower() in ("yes", "1", "true", "on"):
        return Target(None, None, True, True)
    prefix_text = _first(params, PREFIX_PARAMETERS)
    prefix = parse_prefix(prefix_text) if prefix_text else None
    found: dict[Family, str] = {}
    items = [item.strip() for item in params.get("myip", "").split(",")]
    items += [value for value in (_first(params, IPV4_PARAMETERS), _first(params, IPV6_PARAMETERS)) if value]
    for item in items:
        if not item:
            continue
        address = _host_address(item)
        if address is None:
            continue
        family = Family(address.version)
        text = str(address) if family is Family.IPV4 else address.compressed
        if found.get(family, text) != text:
            raise BadAddress(f"two different IPv{family.value} addresses in one request")
        found[family] = text
    for name, family in (("myipv4", Family.IPV4), ("myipv6", Family.IPV6)):
        value = _first(params, IPV4_PARAMETERS if family is Family.IPV4 else IPV6_PARAMETERS)
        if value and Family(parse_address(value).version) is not family:
            raise BadAddress(f"{name} carries an address of the other family")
    if not found and prefix is None:
        if client is None:
            raise BadAddress("no address given and the client's address is unknown")
        found[Family(client.version)] = str(client) if client.version == 4 else client.compressed
    return Target(
        found.get(Family.IPV4),
        found.get(Family.IPV6),
        Family.IPV4 in found,
        Family.IPV6 in found,
        prefix,
    )


def parse_delete_target(params: Mapping[str, str], client: IPAddress | None) -> Target:
    """The families ``/nic/delete`` removes: ``family=4|6|all``, else those of the given addresses.

    As at nsupdate.info, a plain ``/nic/delete`` removes the family of the client's own address.

    :raises BadAddress: for an unknown family or an address that is not valid.
    """
    family = params.get("family", "").strip().lower()
    if family in ("all", "both", "any"):
        return Target(None, None, True, True)
    if family in ("4", "ipv4", "a"):
        return Target(None, None, True, False)
    if family in ("6", "ipv6", "aaaa"):
        return Target(None, None, False, True)
    if family:
        raise BadAddress(f"family={family}: expected 4, 6 or all")
    wanted = parse_target({k: v for k, v in params.items() if k != "offline" and k not in PREFIX_PARAMETERS}, client)
    return Target(None, None, wanted.set_ipv4, wanted.set_ipv6)


_WILDCARD = {"on": True, "yes": True, "1": True, "off": False, "no": False, "0": False}


def parse_wildcard(params: Mapping[str, str]) -> bool | None:
    """``wildcard=ON|OFF`` (dyndns2): make the host a wildcard or not; ``NOCHG``, anything else or nothing
    leaves it as it is."""
    return _WILDCARD.get(params.get("wildcard", "").strip().lower())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an update does to one host: its addresses afterwards, and whether they (or its prefix) changed."""

    ipv4: str | None
    ipv6: str | None
    changed: bool

    def answer(self) -> Answer:
        """``good`` or ``nochg`` with the addresses the host has now (IPv4 first)."""
        addresses = tuple(a for a in (self.ipv4, self.ipv6) if a)
        return Answer(Code.GOOD if self.changed else Code.NOCHG, addresses)


def decide(target: Target, ipv4: str | None, ipv6: str | None, prefix: str | None = None) -> Outcome:
    """Compare what is asked with what the host has (its addresses, and the IPv6 prefix its related names
    take: ``prefixes.prefix_after``)."""
    new4, new6 = target.apply(ipv4, ipv6)
    cleared = target.set_ipv6 and target.ipv6 is None
    new_prefix = prefixes.prefix_after(ipv6, new6, prefix, target.ipv6_prefix, cleared=cleared)
    return Outcome(new4, new6, (new4, new6, new_prefix) != (ipv4, ipv6, prefix))


# -- client address ---------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Networks from config values (already checked by the config loader)."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def in_networks(address: IPAddress | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(
    remote: str | None,
    forwarded_for: str | None,
    real_ip: str | None,
    trusted: Sequence[Network],
) -> IPAddress | None:
    """The client's address: the connection's, or what trusted proxies say it is.

    ``X-Forwarded-For`` is read from the right, skipping trusted proxies, so a client cannot forge its
    address by sending the header itself; ``X-Real-IP`` is used when there is no ``X-Forwarded-For``.
    Headers from an untrusted peer are ignored.
    """
    peer = normalise_client(remote or "")
    if not in_networks(peer, trusted):
        return peer
    if forwarded_for:
        hops = [normalise_client(hop) for hop in forwarded_for.split(",")]
        for hop in reversed(hops):
            if hop is None:
                # A malformed hop: what lies left of it cannot be trusted.
                return peer
            if not in_networks(hop, trusted):
                return hop
        return hops[0] or peer
    if real_ip:
        return normalise_client(real_ip) or peer
    return peer


def forwarded_tls(remote_is_trusted: bool, scheme: str, forwarded_proto: str | None) -> bool:
    """Whether the client's request came over TLS, directly or to a trusted proxy."""
    if scheme == "https":
        return True
    return remote_is_trusted and (forwarded_proto or "").split(",")[0].strip().lower() == "https"


# -- policy -----------------------------------------------------------------------------------------


def is_blocked(name: str, blocked: Iterable[str]) -> bool:
    """Whether ``name`` is in the blocked-hosts list (``*.example.org`` blocks names below it)."""
    for entry in blocked:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            if name.endswith(entry[1:]):
                return True
        elif name == entry:
            return True
    return False


def agent_blocked(agent: str | None, blocked: Iterable[str]) -> bool:
    """Whether a User-Agent contains one of the configured parts."""
    lowered = (agent or "").lower()
    return any(part.lower() in lowered for part in blocked if part)


class Fault(enum.Enum):
    """Why an otherwise successful update counts against the host."""

    TOO_SOON = "change sooner than min_interval"
    NOCHG_FLOOD = "unchanged update sooner than nochg_interval"

    @property
    def code(self) -> str:
        """Its short name in a host's history (``too-soon``, ``nochg-flood``)."""
        return self.name.lower().replace("_", "-")


def fault_of(
    outcome: Outcome,
    now: int,
    last_update_at: int | None,
    address_changed_at: int | None,
    min_interval: int,
    nochg_interval: int,
) -> Fault | None:
    """Whether an update is too frequent: a change too soon after the last change, or a nochg too soon
    after the last update."""
    if outcome.changed:
        if min_interval and address_changed_at is not None and now - address_changed_at < min_interval:
            return Fault.TOO_SOON
        return None
    if nochg_interval and last_update_at is not None and now - last_update_at < nochg_interval:
        return Fault.NOCHG_FLOOD
    return None


def valid_txt(value: str) -> bool:
    """An ACME challenge value: printable ASCII without quotes or backslashes, 1 to 255 characters."""
    try:
        validate.txt_value(value)
    except ValidationError:
        return False
    return True
