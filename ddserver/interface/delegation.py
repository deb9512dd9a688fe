"""Checking that a user's zone is delegated to the service: the queries (dnspython), around the pure rules of
``ddserver.dns.delegation``; used by the zone pages ("check now", and on creation) and by
``ddserver zone check-delegations`` (the periodic recheck).

How: through the configured resolver, find the parent zone (the closest ancestor with NS records) and its
nameservers' addresses, then ask those servers (without recursion) for the zone's NS: their referral is the
delegation. A resolver that answers for the parent with authority is such a server itself and is asked
directly. A zone that is not served yet cannot be checked by asking a resolver for its NS alone: the resolver
would follow the delegation to this service, which refuses to answer for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from ddserver.config import ZonesSection, parse_server
from ddserver.db import Database
from ddserver.dns import delegation
from ddserver.dns.delegation import Verdict
from ddserver.store import ownzones
from ddserver.store.zones import Zone

logger = logging.getLogger(__name__)


class CheckFailed(Exception):
    """The check could not be made (no answer); the message says why, for the owner."""


@dataclass(frozen=True)
class _Answer:
    rcode: int
    authoritative: bool
    answer: list[dns.rrset.RRset]
    authority: list[dns.rrset.RRset]
    additional: list[dns.rrset.RRset]


def _ask(name: str, rdtype: str, host: str, port: int, timeout: float, *, recurse: bool) -> _Answer:
    query = dns.message.make_query(name, rdtype)
    if not recurse:
        query.flags &= ~dns.flags.RD
    response = dns.query.udp(query, host, timeout=timeout, port=port)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(query, host, timeout=timeout, port=port)
    return _Answer(
        response.rcode(),
        bool(response.flags & dns.flags.AA),
        list(response.answer),
        list(response.authority),
        list(response.additional),
    )


def _names(rrsets: list[dns.rrset.RRset], owner: str, rdtype: str) -> list[str]:
    wanted = dns.name.from_text(owner)
    code = dns.rdatatype.from_text(rdtype)
    return [
        rdata.to_text().rstrip(".").lower()
        for rrset in rrsets
        if rrset.name == wanted and rrset.rdtype == code
        for rdata in rrset
    ]


def find_delegation(zone: str, resolvers: tuple[str, ...], timeout: float) -> list[str] | None:
    """The NS names the parent of ``zone`` delegates it to (None: it does not delegate it).

    :raises CheckFailed: when no resolver, or no server of the parent, answered.
    """
    problem = "no resolver is configured ([zones] delegation_resolver)"
    for text in resolvers:
        host, port = parse_server(text)
        try:
            return _through(zone, host, port, timeout)
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            problem = f"the resolver {text} did not answer ({type(exc).__name__})"
            logger.info("delegation check of %s: %s", zone, problem)
        except CheckFailed as exc:
            problem = str(exc)
    raise CheckFailed(f"The delegation could not be checked: {problem}.")


def _through(zone: str, host: str, port: int, timeout: float) -> list[str] | None:
    for parent in delegation.ancestors(zone):
        found = _ask(parent, "NS", host, port, timeout, recurse=True)
        if found.rcode == dns.rcode.NXDOMAIN:
            continue
        if found.rcode != dns.rcode.NOERROR:
            raise CheckFailed(
                f"the resolver answered {dns.rcode.to_text(dns.rcode.Rcode(found.rcode))} for the NS records of {parent}"
            )
        parent_ns = _names(found.answer, parent, "NS")
        if not parent_ns:
            continue  # not a zone cut: look further up
        if found.authoritative:
            # The resolver is a server of the parent: its referral is the delegation.
            return _referral(zone, parent, [(host, port)], timeout)
        addresses: list[tuple[str, int]] = []
        for ns in parent_ns:
            for rdtype in ("A", "AAAA"):
                glue = _names(found.additional, ns, rdtype)
                if not glue:
                    try:
                        glue = _names(_ask(ns, rdtype, host, port, timeout, recurse=True).answer, ns, rdtype)
                    except (OSError, EOFError, dns.exception.DNSException):
                        glue = []
                addresses += [(address, 53) for address in glue]
        if not addresses:
            raise CheckFailed(f"no address was found for the nameservers of {parent} ({', '.join(parent_ns)})")
        return _referral(zone, parent, addresses, timeout)
    raise CheckFailed(f"no parent zone of {zone} was found")


def _referral(zone: str, parent: str, servers: list[tuple[str, int]], timeout: float) -> list[str] | None:
    for host, port in servers:
        try:
            found = _ask(zone, "NS", host, port, timeout, recurse=False)
        except (OSError, EOFError, dns.exception.DNSException):
            continue
        if found.rcode == dns.rcode.NXDOMAIN:
            return None
        if found.rcode != dns.rcode.NOERROR:
            continue
        names = _names(found.answer, zone, "NS") or _names(found.authority, zone, "NS")
        return names or None
    raise CheckFailed(f"no nameserver of the parent zone {parent} answered")


def check(config: ZonesSection, zone: str) -> Verdict:
    """Whether ``zone``'s parent delegates it to ``[zones] nameservers``, asked through the configured resolver."""
    try:
        found = find_delegation(zone, config.delegation_resolver, config.check_timeout)
    except CheckFailed as exc:
        return Verdict(False, str(exc))
    return delegation.judge(zone, found, config.nameservers)


def check_and_record(db: Database, config: ZonesSection, zone: Zone) -> Zone:
    """Check a user's zone and store the result: it is served, kept in its grace period, or suspended."""
    verdict = check(config, zone.name)
    logger.info("delegation of %s: %s", zone.name, "ok" if verdict.ok else verdict.reason)
    return ownzones.record_check(db, zone.id, verdict.ok, verdict.reason, config.grace_period)
