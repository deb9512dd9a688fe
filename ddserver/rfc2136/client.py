"""Talking to a zone's primary: SOA queries, signed UPDATEs, zone transfers and the checks of ``zone check``.

Every failure comes out as an ``Rfc2136Error`` (see ``ddserver.dns.rfc2136``) naming the zone and the server.
"""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.update

from ddserver.dns import rfc2136
from ddserver.dns.rfc2136 import Target, Transport


def _exchange(target: Target, message: dns.message.Message, timeout: float) -> dns.message.Message:
    try:
        if target.transport is Transport.UDP:
            response = dns.query.udp(message, target.host, timeout=timeout, port=target.port)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(message, target.host, timeout=timeout, port=target.port)
        else:
            response = dns.query.tcp(message, target.host, timeout=timeout, port=target.port)
    except Exception as exc:  # every failure is mapped; unknown ones are raised again
        raise rfc2136.error_for_exception(target, exc, timeout) from exc
    return response


def soa(target: Target, timeout: float) -> dns.rdata.Rdata:
    """The zone's current SOA at the primary.

    :raises Rfc2136Error: when the server is unreachable, refuses, or does not serve the zone.
    """
    response = _exchange(target, rfc2136.soa_query(target), timeout)
    return rfc2136.soa_from_answer(target, response)


def send(target: Target, update: dns.update.UpdateMessage, timeout: float) -> None:
    """Send one UPDATE and insist on NOERROR.

    :raises Rfc2136Error: the mapped error (``ZoneChanged`` when the SOA prerequisite failed).
    """
    response = _exchange(target, update, timeout)
    rfc2136.check_answer(target, response)


def transfer(target: Target, timeout: float) -> list[dns.rrset.RRset]:
    """The whole zone by AXFR, signed with the zone's key.

    :raises TransferFailed: when the server refuses the transfer (allow-transfer must name the key).
    """
    key = target.key()
    rrsets: list[dns.rrset.RRset] = []
    try:
        for message in dns.query.xfr(
            target.host,
            target.origin,
            port=target.port,
            timeout=timeout,
            lifetime=max(timeout * 6, 30.0),
            keyring=key,  # type: ignore[arg-type]  # dnspython takes a single Key here too
            keyalgorithm=target.tsig_algorithm.dns_name,
            relativize=False,
        ):
            rrsets.extend(message.answer)
    except dns.exception.FormError as exc:
        raise rfc2136.TransferFailed(
            f"{target.describe()}: the zone transfer (AXFR) failed ({exc}); the server must allow transfers "
            f"to the key {target.tsig_name or '(no key)'}"
        ) from exc
    except dns.query.TransferError as exc:
        raise rfc2136.TransferFailed(
            f"{target.describe()}: the server refused the zone transfer (AXFR, {dns.rcode.to_text(exc.rcode)}); "
            f"allow transfers to the key {target.tsig_name or '(no key)'} for 'ddserver zone sync'"
        ) from exc
    except Exception as exc:
        raise rfc2136.error_for_exception(target, exc, timeout) from exc
    return rrsets


def check(target: Target, nameservers: tuple[str, ...], timeout: float) -> list[str]:
    """What ``ddserver zone check`` proves, one line each: the server answers for the zone with
    authority, its SOA is the zone's, and a signed no-op update is accepted.

    :raises Rfc2136Error: at the first check that fails.
    """
    lines = []
    query = rfc2136.soa_query(target)
    response = _exchange(target, query, timeout)
    record = rfc2136.soa_from_answer(target, response)
    if not response.flags & dns.flags.AA:
        raise rfc2136.NotAuth(f"{target.describe()}: the SOA answer is not authoritative; the server is not a primary")
    lines.append(f"the server answers for {target.zone} with authority: SOA serial {record.serial}")
    primary = record.mname.to_text(omit_final_dot=True).lower()
    if nameservers and primary not in nameservers:
        lines.append(f"note: the SOA names {primary} as primary; ddserver lists {', '.join(nameservers)}")
    else:
        lines.append(f"the SOA names {primary} as primary, as ddserver has it")
    # Deleting an rrset nobody has is a no-op the server must still authorise (key, policy), under the
    # SOA just read as prerequisite.
    update = rfc2136.build_update(target, [], {}, soa=record)
    update.delete(dns.name.from_text(f"_ddserver-check.{target.zone}"), dns.rdatatype.TXT)
    try:
        send(target, update, timeout)
    except rfc2136.ZoneChanged:
        send(target, rfc2136.build_update(target, [], {}, soa=soa(target, timeout)), timeout)
    signed = f"signed with {target.tsig_name} ({target.tsig_algorithm.value})" if target.tsig_name else "unsigned"
    lines.append(f"a no-op update {signed} is accepted")
    return lines
