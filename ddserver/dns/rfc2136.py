"""RFC 2136 updates signed with TSIG: what to send for changed names, and what a server's answer means.

Pure: no sockets and no database. The worker in ``ddserver.rfc2136`` is the shell that sends these messages.
"""

from __future__ import annotations

import base64
import binascii
import enum
import errno
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.tsig
import dns.update

from ddserver.errors import DDServerError
from ddserver.store.dnsdata import HostData, RecordData


class TsigAlgorithm(enum.Enum):
    """TSIG algorithms (RFC 8945); hmac-sha256 is the default, the others serve older servers."""

    HMAC_SHA256 = "hmac-sha256"
    HMAC_SHA512 = "hmac-sha512"
    HMAC_SHA384 = "hmac-sha384"
    HMAC_SHA224 = "hmac-sha224"
    HMAC_SHA1 = "hmac-sha1"
    HMAC_MD5 = "hmac-md5"

    @property
    def dns_name(self) -> dns.name.Name:
        if self is TsigAlgorithm.HMAC_MD5:
            return dns.tsig.HMAC_MD5
        return dns.name.from_text(self.value)


class Transport(enum.Enum):
    """How UPDATE messages travel: TCP unless a zone asks for UDP."""

    TCP = "tcp"
    UDP = "udp"


#: The types ddserver owns at a host's names; anything else at those names is left alone.
MANAGED_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT)

#: Names per UPDATE message when many are pending (each name is at most a few hundred bytes).
DEFAULT_BATCH = 200


# ---------------------------------------------------------------------------------------------------------
# Errors: one class per way an update fails, each with a message a person can act on.


class Rfc2136Error(DDServerError):
    """The nameserver did not apply the update."""

    #: Retry later (with backoff); False for mistakes that need an admin (they are retried slowly too).
    transient = True


class ConfigurationError(Rfc2136Error):
    """The zone's RFC 2136 settings are not usable."""

    transient = False


class NotAuth(Rfc2136Error):
    """The server is not authoritative for the zone, or does not accept this key for it (NOTAUTH)."""

    transient = False


class Refused(Rfc2136Error):
    """The server refused the update (REFUSED)."""

    transient = False


class NotZone(Rfc2136Error):
    """A name in the update is outside the zone (NOTZONE)."""

    transient = False


class BadKey(Rfc2136Error):
    """The server does not know this TSIG key (BADKEY)."""

    transient = False


class BadSig(Rfc2136Error):
    """The server rejected the TSIG signature (BADSIG)."""

    transient = False


class BadTime(Rfc2136Error):
    """The server's clock and this machine's differ too much (BADTIME)."""

    transient = False


class ServerFailure(Rfc2136Error):
    """The server failed to apply the update (SERVFAIL or another error code)."""


class Timeout(Rfc2136Error):
    """The server did not answer in time."""


class Unreachable(Rfc2136Error):
    """The server could not be reached."""


class ZoneChanged(Rfc2136Error):
    """The zone changed at the server between reading its SOA and the update (prerequisite failed)."""


class TransferFailed(Rfc2136Error):
    """The zone could not be transferred (AXFR) for a full comparison."""

    transient = False


def _describe_key(target: Target) -> str:
    return f"{target.tsig_name} ({target.tsig_algorithm.value})" if target.tsig_name else "(no key)"


# One table from the server's answer to the error and the advice that goes with it.
_RCODE_ERRORS: dict[dns.rcode.Rcode, tuple[type[Rfc2136Error], str]] = {
    dns.rcode.NOTAUTH: (
        NotAuth,
        "the server is not authoritative for the zone or does not accept the key {key} for it (NOTAUTH); "
        "check the zone name and the server's update-policy",
    ),
    dns.rcode.REFUSED: (
        Refused,
        "the server refused the update (REFUSED); allow updates by the key {key} in the zone's "
        "update-policy / allow-update",
    ),
    dns.rcode.NOTZONE: (NotZone, "a name in the update is outside the zone (NOTZONE)"),
    dns.rcode.NXRRSET: (ZoneChanged, "the zone changed at the server during the update (NXRRSET); retrying"),
    dns.rcode.YXRRSET: (ZoneChanged, "the zone changed at the server during the update (YXRRSET); retrying"),
    dns.rcode.SERVFAIL: (ServerFailure, "the server failed to apply the update (SERVFAIL); see the server's log"),
    dns.rcode.FORMERR: (ServerFailure, "the server could not parse the update (FORMERR)"),
    dns.rcode.NOTIMP: (ServerFailure, "the server does not implement dynamic updates (NOTIMP)"),
    dns.rcode.BADKEY: (
        BadKey,
        "the server does not know the TSIG key {key} (BADKEY); the key name and algorithm must match the server's key",
    ),
    dns.rcode.BADSIG: (
        BadSig,
        "the server rejected the signature of the TSIG key {key} (BADSIG); the secret differs from the server's",
    ),
    dns.rcode.BADTIME: (
        BadTime,
        "the server's clock and this machine's differ by more than 5 minutes (BADTIME); synchronise the "
        "clocks with NTP",
    ),
}


def error_for_rcode(target: Target, rcode: int) -> Rfc2136Error:
    """The error for an answer other than NOERROR (also the TSIG error codes BADKEY, BADSIG, BADTIME)."""
    try:
        code = dns.rcode.Rcode(rcode)
    except ValueError:
        return ServerFailure(f"{target.describe()}: the server answered with error code {rcode}")
    cls, text = _RCODE_ERRORS.get(code, (ServerFailure, f"the server answered {code.name}"))
    return cls(f"{target.describe()}: {text.format(key=_describe_key(target))}")


def error_for_exception(target: Target, exc: BaseException, timeout: float) -> Rfc2136Error:
    """The error for an exception raised while talking to the server (dnspython or the socket)."""
    if isinstance(exc, Rfc2136Error):
        return exc
    if isinstance(exc, dns.tsig.PeerBadKey):
        return error_for_rcode(target, dns.rcode.BADKEY)
    if isinstance(exc, dns.tsig.PeerBadSignature):
        return error_for_rcode(target, dns.rcode.BADSIG)
    if isinstance(exc, dns.tsig.PeerBadTime):
        return error_for_rcode(target, dns.rcode.BADTIME)
    if isinstance(exc, dns.tsig.BadSignature | dns.tsig.BadKey | dns.tsig.PeerError):
        return BadSig(
            f"{target.describe()}: the server's answer is not signed with the key {_describe_key(target)}; "
            "the server probably has another secret or algorithm for it"
        )
    if isinstance(exc, dns.tsig.BadTime):
        return error_for_rcode(target, dns.rcode.BADTIME)
    if isinstance(exc, dns.exception.Timeout | TimeoutError):
        return Timeout(f"{target.describe()}: no answer within {timeout:g} s (timeout); is the server up?")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(
            f"{target.describe()}: connection refused; is the nameserver running and listening on that port?"
        )
    if isinstance(exc, EOFError | ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return Unreachable(f"{target.describe()}: the server closed the connection before answering")
    if isinstance(exc, OSError):
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or exc.__class__.__name__
        return Unreachable(f"{target.describe()}: cannot reach the server ({reason})")
    if isinstance(exc, dns.exception.DNSException):
        return ServerFailure(f"{target.describe()}: bad answer from the server ({exc.__class__.__name__}: {exc})")
    raise exc


# ---------------------------------------------------------------------------------------------------------
# Where a zone's updates go.


@dataclass(frozen=True)
class Target:
    """A zone's RFC 2136 primary and the TSIG key that signs the updates (the secret is never shown)."""

    zone: str
    host: str
    port: int
    transport: Transport = Transport.TCP
    tsig_name: str | None = None
    tsig_algorithm: TsigAlgorithm = TsigAlgorithm.HMAC_SHA256
    tsig_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls,
        zone: str,
        server: str | None,
        transport: str = "tcp",
        tsig_name: str | None = None,
        tsig_algorithm: str | None = None,
        tsig_secret: str | None = None,
    ) -> Target:
        """Build a target from a zone's stored settings.

        :raises ConfigurationError: naming the setting that is wrong (never showing the secret).
        """
        if not server:
            raise ConfigurationError(f"{zone}: no RFC 2136 server is set")
        host, sep, port_text = server.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError(f"{zone}: RFC 2136 server {server!r}: expected HOST:PORT")
        try:
            mode = Transport(transport or "tcp")
        except ValueError:
            raise ConfigurationError(f"{zone}: RFC 2136 transport {transport!r}: expected tcp or udp")
        try:
            algorithm = TsigAlgorithm(tsig_algorithm or TsigAlgorithm.HMAC_SHA256.value)
        except ValueError:
            choices = ", ".join(a.value for a in TsigAlgorithm)
            raise ConfigurationError(f"{zone}: TSIG algorithm {tsig_algorithm!r}: expected one of {choices}")
        if bool(tsig_name) != bool(tsig_secret):
            raise ConfigurationError(f"{zone}: a TSIG key needs both a name and a secret")
        if tsig_secret:
            try:
                base64.b64decode(tsig_secret, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(f"{zone}: the TSIG secret of key {tsig_name} is not valid base64")
        return cls(zone, host, int(port_text), mode, tsig_name or None, algorithm, tsig_secret or None)

    @property
    def server(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)

    def describe(self) -> str:
        """How logs and recorded errors name the zone and its server."""
        return f"{self.zone} at {self.server}"

    def key(self) -> dns.tsig.Key | None:
        if not self.tsig_name or not self.tsig_secret:
            return None
        return dns.tsig.Key(self.tsig_name, self.tsig_secret, self.tsig_algorithm.dns_name)


# ---------------------------------------------------------------------------------------------------------
# What the zone should hold, and the messages that make the server hold it.


@dataclass(frozen=True)
class RRData:
    """One rrset: its TTL and its records (compared as sets, in dnspython's canonical form)."""

    ttl: int
    rdatas: frozenset[dns.rdata.Rdata]


#: name -> type -> rrset, for the names ddserver manages.
Desired = dict[str, dict[dns.rdatatype.RdataType, RRData]]


def txt_rdata(content: str) -> dns.rdata.Rdata:
    """A TXT record from stored content: raw text (split into 255-byte strings), or presentation form
    when it is already quoted (``"a" "b"``)."""
    stripped = content.strip()
    if len(stripped) >= 2 and stripped.startswith('"') and stripped.endswith('"'):
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, stripped)
    raw = content.encode("utf-8")
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def _rdata(rdtype: dns.rdatatype.RdataType, text: str, origin: dns.name.Name) -> dns.rdata.Rdata:
    if rdtype == dns.rdatatype.TXT:
        return txt_rdata(text)
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin)


def _add(desired: Desired, name: str, rdtype: dns.rdatatype.RdataType, ttl: int, rdata: dns.rdata.Rdata) -> None:
    types = desired.setdefault(name, {})
    current = types.get(rdtype)
    if current is None:
        types[rdtype] = RRData(ttl, frozenset([rdata]))
    else:
        # An rrset has one TTL: the shortest one asked for wins, so nothing is cached longer than wanted.
        types[rdtype] = RRData(min(current.ttl, ttl), current.rdatas | {rdata})


def desired_state(
    zone: str, hosts: Iterable[HostData], records: Iterable[RecordData], default_ttl: int
) -> tuple[Desired, list[str]]:
    """What DNS should hold for these hosts and records (as ``store.dnsdata`` gives them).

    :param default_ttl: the zone's TTL for hosts without their own (the zone's, else ``[dns] default_ttl``).
    :returns: the rrsets by name, and a message for each record that could not be used (it is skipped).
    """
    origin = dns.name.from_text(zone)
    desired: Desired = {}
    problems: list[str] = []
    ttls: dict[str, int] = {}
    for host in hosts:
        ttl = host.ttl if host.ttl is not None else default_ttl
        ttls[host.name] = ttl
        owners = [host.name, f"*.{host.name}"] if host.wildcard else [host.name]
        desired.setdefault(host.name, {})
        for owner in owners:
            if host.ipv4:
                _add(desired, owner, dns.rdatatype.A, ttl, _rdata(dns.rdatatype.A, host.ipv4, origin))
            if host.ipv6:
                _add(desired, owner, dns.rdatatype.AAAA, ttl, _rdata(dns.rdatatype.AAAA, host.ipv6, origin))
    for record in records:
        try:
            rdtype = dns.rdatatype.RdataType.make(record.type.upper())
            rdata = _rdata(rdtype, record.content, origin)
        except (dns.exception.DNSException, ValueError) as exc:
            problems.append(f"{record.name} {record.type} {record.content!r}: not a valid record ({exc})")
            continue
        ttl = record.ttl if record.ttl is not None else ttls.get(record.name, default_ttl)
        _add(desired, record.name, rdtype, ttl, rdata)
    return desired, problems


def managed_names(zone: str, changed: Iterable[str]) -> list[str]:
    """The owner names a change of ``changed`` may touch: each name and its wildcard child, in order.

    The apex is left out: its SOA and NS belong to the primary, and no host lives there.
    """
    seen: dict[str, None] = {}
    for name in changed:
        if name == zone or name == "*" or not name.endswith("." + zone):
            continue
        seen.setdefault(name, None)
        if not name.startswith("*."):
            seen.setdefault(f"*.{name}", None)
    return list(seen)


def chunks(names: Sequence[str], size: int = DEFAULT_BATCH) -> Iterator[list[str]]:
    """Split the names of one zone into groups, one UPDATE message each."""
    for start in range(0, len(names), max(1, size)):
        yield list(names[start : start + size])


def build_update(
    target: Target,
    names: Iterable[str],
    desired: Mapping[str, Mapping[dns.rdatatype.RdataType, RRData]],
    *,
    soa: dns.rdata.Rdata | None = None,
) -> dns.update.UpdateMessage:
    """One UPDATE that makes each of ``names`` hold exactly its desired A, AAAA and TXT rrsets.

    A managed type the name should not have is deleted; other types (and other names) are left alone.

    :param soa: the zone's SOA as read just before: a prerequisite, so that an update prepared from older
        data is refused (NXRRSET) if anyone changed the zone in between (another worker, say).
    """
    origin = target.origin
    update = dns.update.UpdateMessage(
        origin, keyring=target.key(), keyname=None, keyalgorithm=target.tsig_algorithm.dns_name
    )
    if soa is not None:
        update.present(origin, soa)
    for name in names:
        owner = dns.name.from_text(name)
        if not owner.is_subdomain(origin):
            raise NotZone(f"{target.describe()}: {name} is outside the zone")
        wanted = desired.get(name, {})
        for rdtype in dict.fromkeys([*MANAGED_TYPES, *wanted]):
            rrset = wanted.get(rdtype)
            if rrset is None:
                update.delete(owner, rdtype)
            else:
                update.replace(owner, rrset.ttl, *sorted(rrset.rdatas, key=lambda r: r.to_digestable()))
    return update


def soa_query(target: Target) -> dns.message.QueryMessage:
    """The question for the zone's SOA (signed, so a server that only talks to the key still answers)."""
    query = dns.message.make_query(target.origin, dns.rdatatype.SOA)
    key = target.key()
    if key is not None:
        query.use_tsig(key)
    return query


def check_answer(target: Target, response: dns.message.Message) -> None:
    """Raise the matching error unless the server answered NOERROR (habit: always look at ``rcode()``).

    :raises Rfc2136Error: a subclass naming what went wrong and what to do.
    """
    if response.tsig_error:
        raise error_for_rcode(target, response.tsig_error)
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        raise error_for_rcode(target, rcode)


def soa_from_answer(target: Target, response: dns.message.Message) -> dns.rdtypes.ANY.SOA.SOA:
    """The SOA record out of an answer to ``soa_query``.

    :raises NotAuth: when the answer holds no SOA for the zone (the server does not serve it).
    """
    check_answer(target, response)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == target.origin:
            return typing.cast(dns.rdtypes.ANY.SOA.SOA, rrset[0])
    raise NotAuth(f"{target.describe()}: the server gave no SOA for the zone; it does not serve it")


def server_state(target: Target, rrsets: Iterable[dns.rrset.RRset], protected: Iterable[str] = ()) -> Desired:
    """The managed rrsets of a transferred zone, keyed like ``desired_state``.

    Left out: the apex, and ``protected`` names (in-zone nameservers, whose glue ddserver must not remove).
    """
    origin = target.origin
    skip = {dns.name.from_text(n) for n in protected} | {origin}
    found: Desired = {}
    for rrset in rrsets:
        if rrset.rdtype not in MANAGED_TYPES or rrset.name in skip:
            continue
        name = rrset.name.to_text(omit_final_dot=True).lower()
        found.setdefault(name, {})[dns.rdatatype.RdataType(rrset.rdtype)] = RRData(rrset.ttl, frozenset(rrset))
    return found


def differences(server: Desired, desired: Desired) -> list[str]:
    """Names whose managed rrsets differ between the server and the database, sorted."""
    names = set(server) | set(desired)
    out = []
    for name in names:
        have = {t: r for t, r in server.get(name, {}).items() if t in MANAGED_TYPES}
        want = {t: r for t, r in desired.get(name, {}).items() if t in MANAGED_TYPES}
        if have != want:
            out.append(name)
    return sorted(out)


def nameserver_names(rrsets: Iterable[dns.rrset.RRset], origin: dns.name.Name) -> list[str]:
    """In-zone targets of the apex NS records (their addresses are glue the admin keeps)."""
    found = []
    for rrset in rrsets:
        if rrset.rdtype == dns.rdatatype.NS and rrset.name == origin:
            for rdata in rrset:
                if rdata.target.is_subdomain(origin):
                    found.append(rdata.target.to_text(omit_final_dot=True).lower())
    return found
