"""The in-memory index of everything ddserver serves in DNS, and the answer to one question (pure, no I/O).

Built from the store's rows and changed name by name; a lookup is a few dict reads. Hosts are kept compact
(a plain string for the usual host with only an IPv4 address) so a million fit in a few hundred MB.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Iterable, Iterator

from ddserver.dns import nsec3
from ddserver.store.dnsdata import ZoneRow

#: One answer record: (type, ttl, content in zone-file form, names absolute without the final dot).
Record = tuple[str, int, str]


class QType(enum.StrEnum):
    """The record types the index answers (others get an empty answer)."""

    ANY = "ANY"
    SOA = "SOA"
    NS = "NS"
    A = "A"
    AAAA = "AAAA"
    TXT = "TXT"


_ANY = QType.ANY.value


#: Seconds in a week, and the weeks PowerDNS's signatures follow (counted from the epoch, as PowerDNS does).
WEEK = 7 * 86400


class Zone:
    """A served zone with its apex records rendered once (again each week for a zone with secondaries)."""

    __slots__ = ("_week", "apex", "chained", "host_ttl", "id", "name", "row", "serial", "signed", "soa")

    def __init__(self, row: ZoneRow, default_ttl: int) -> None:
        self.row = row
        self.id = row.id
        self.name = row.name
        #: DNSSEC is on and the zone has keys: PowerDNS signs its answers (remote backend only).
        self.signed = row.dnssec and bool(row.keys)
        #: Signed with a full NSEC3 chain (not narrow), so that secondaries can transfer it: the zone has
        #: secondaries (transfer keys or also-notify addresses). docs/dnssec.md#nsec3-narrow-or-a-chain
        self.chained = self.signed and nsec3_chained(row)
        #: TTL of hosts that set none: the zone's, else the configured default.
        self.host_ttl = row.ttl if row.ttl is not None else default_ttl
        self._week = -1
        self._render(0)
        self.current()

    def _render(self, week: int) -> None:
        row = self.row
        self._week = week
        self.serial = (row.serial + week) % 2**32
        mname = row.nameservers[0] if row.nameservers else row.name
        content = f"{mname} {row.hostmaster} {self.serial} {row.refresh} {row.retry} {row.expire} {row.minimum}"
        self.soa: Record = ("SOA", row.zone_ttl, content)
        self.apex: tuple[Record, ...] = (self.soa, *tuple(("NS", row.zone_ttl, ns) for ns in row.nameservers))

    def current(self, now: float | None = None) -> Zone:
        """The zone with its serial for this week.

        A signed zone's secondaries hold PowerDNS's signatures from their last transfer; PowerDNS makes them
        valid for the week they are made in and the two after. So that a zone without changes is sent again
        before they expire, a zone signed for secondaries serves its stored serial plus the number of the
        week: the serial grows by one when a week begins, PowerDNS notifies, the secondaries transfer
        freshly signed data. Other zones serve the stored serial.
        """
        if self.chained:
            week = int((time.time() if now is None else now) // WEEK)
            if week != self._week:
                self._render(week)
        return self


def nsec3_chained(row: ZoneRow) -> bool:
    """Whether a signed zone's denial of existence uses a full NSEC3 chain (``nsec3.chained``)."""
    return nsec3.chained(bool(row.transfer_keys), bool(row.also_notify))


def quote_txt(text: str) -> str:
    """Render TXT data as one zone-file string: quoted, with ``"`` and ``\\`` escaped and control or
    non-ASCII bytes as ``\\DDD`` (PowerDNS splits strings longer than 255 bytes itself)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = []
    for byte in text.encode("utf-8"):
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def render_content(rtype: str, content: str) -> str:
    """Content of an extra record in zone-file form."""
    if rtype == "TXT":
        return quote_txt(content)
    return content


# A host is either a str (only an IPv4 address, TTL from the zone, no wildcard: most hosts) or this tuple.
HostValue = str | tuple[str | None, str | None, int | None, bool]
# An extra record: (host that owns it, type, ttl or None, rendered content).
Extra = tuple[str, str, int | None, str]


def host_value(ipv4: str | None, ipv6: str | None, ttl: int | None, wildcard: bool) -> HostValue:
    """The compact form of a host's row (a host without addresses is kept: its name exists, NODATA)."""
    if ipv6 is None and ttl is None and not wildcard and ipv4 is not None:
        return ipv4
    return (ipv4, ipv6, ttl, bool(wildcard))


class ZoneIndex:
    """Zones, hosts and extra records, keyed by lower-case names without the final dot.

    Readers never lock: each change replaces whole dict values, which is atomic for other threads.
    """

    def __init__(self, default_ttl: int = 60) -> None:
        self.default_ttl = default_ttl
        self.zones: dict[str, Zone] = {}
        self.zones_by_id: dict[int, Zone] = {}
        self.hosts: dict[str, HostValue] = {}
        self.extra: dict[str, tuple[Extra, ...]] = {}
        #: Owner names of each host's extra records, to drop them when the host changes.
        self.owners: dict[str, tuple[str, ...]] = {}
        #: NSEC3 chains of the zones signed with one, by zone id (built by :meth:`sync_chains`).
        self.chains: dict[int, nsec3.Chain] = {}
        self._chain_lock = threading.Lock()

    # -- building ---------------------------------------------------------------------------------

    def set_zone(self, row: ZoneRow) -> Zone:
        zone = Zone(row, self.default_ttl)
        old = self.zones_by_id.get(row.id)
        if old is not None and old.name != row.name:
            self.zones.pop(old.name, None)
            self.chains.pop(row.id, None)
        self.zones[row.name] = zone
        self.zones_by_id[row.id] = zone
        return zone

    def drop_zone(self, name: str) -> None:
        """Forget a zone with every host and record below it."""
        zone = self.zones.pop(name, None)
        if zone is not None and self.zones_by_id.get(zone.id) is zone:
            del self.zones_by_id[zone.id]
            self.chains.pop(zone.id, None)
        suffix = "." + name

        def orphan(host: str) -> bool:
            # Below the zone and not in a zone further down (a parent zone does not inherit them).
            if not host.endswith(suffix):
                return False
            zone = self.zone_of(host)
            return zone is None or not zone.name.endswith(suffix)

        for host in [h for h in self.hosts if orphan(h)] + [h for h in self.owners if orphan(h)]:
            self.drop_host(host)

    def set_host(self, name: str, ipv4: str | None, ipv6: str | None, ttl: int | None, wildcard: bool) -> None:
        self.hosts[name] = host_value(ipv4, ipv6, ttl, wildcard)

    def drop_host(self, name: str) -> None:
        """Forget a host and the extra records it owns."""
        self.hosts.pop(name, None)
        for owner in self.owners.pop(name, ()):
            kept = tuple(e for e in self.extra.get(owner, ()) if e[0] != name)
            if kept:
                self.extra[owner] = kept
            else:
                self.extra.pop(owner, None)

    def add_record(self, host: str, owner: str, rtype: str, content: str, ttl: int | None) -> None:
        entry: Extra = (host, rtype.upper(), ttl, render_content(rtype.upper(), content))
        self.extra[owner] = (*self.extra.get(owner, ()), entry)
        owners = self.owners.get(host, ())
        if owner not in owners:
            self.owners[host] = (*owners, owner)

    def host_of_owner(self, owner: str) -> list[str]:
        """Hosts that own extra records at ``owner``."""
        return [e[0] for e in self.extra.get(owner, ())]

    # -- answering --------------------------------------------------------------------------------

    def zone_of(self, name: str) -> Zone | None:
        """The most specific served zone containing ``name`` (lower case, no final dot)."""
        zones = self.zones
        while True:
            zone = zones.get(name)
            if zone is not None:
                return zone
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def lookup(self, name: str, qtype: str) -> tuple[Zone | None, list[Record]]:
        """Answer one question.

        :param name: the qname in lower case without the final dot.
        :param qtype: an upper-case type name; ``ANY`` gives every record of the name.
        :returns: the zone (None when the name is in no served zone) and the records, empty for a
            missing name (NXDOMAIN) or a missing type (NODATA).
        """
        zone = self.zone_of(name)
        if zone is None:
            return None, []
        if name == zone.name:
            zone.current()
            if qtype == _ANY:
                return zone, list(zone.apex)
            return zone, [r for r in zone.apex if r[0] == qtype]
        out: list[Record] = []
        host = self.hosts.get(name)
        if host is not None:
            if type(host) is str:
                if qtype == "A" or qtype == _ANY:
                    out.append(("A", zone.host_ttl, host))
            else:
                self._addresses(host, zone, qtype, out)  # type: ignore[arg-type]
        elif name.startswith("*."):
            # PowerDNS looks for *.parent itself when a name is missing; answer the literal name.
            base = self.hosts.get(name[2:])
            if base is not None and type(base) is not str and base[3]:
                self._addresses(base, zone, qtype, out)  # type: ignore[arg-type]
        extra = self.extra.get(name)
        if extra:
            for _, rtype, ttl, content in extra:
                if qtype in (_ANY, rtype):
                    out.append((rtype, zone.host_ttl if ttl is None else ttl, content))
        return zone, out

    @staticmethod
    def _addresses(host: tuple, zone: Zone, qtype: str, out: list[Record]) -> None:
        ipv4, ipv6, ttl, _ = host
        ttl = zone.host_ttl if ttl is None else ttl
        if ipv4 is not None and (qtype == "A" or qtype == _ANY):
            out.append(("A", ttl, ipv4))
        if ipv6 is not None and (qtype == "AAAA" or qtype == _ANY):
            out.append(("AAAA", ttl, ipv6))

    def exists(self, name: str) -> bool:
        """Whether ``name`` has any record (used to tell NXDOMAIN from NODATA in tests and tools)."""
        zone, records = self.lookup(name, _ANY)
        return zone is not None and (bool(records) or name in self.hosts)

    def list_zone(self, zone: Zone) -> Iterator[tuple[str, Record]]:
        """Every record of a zone as (owner name, record), SOA first: the AXFR / ``list`` answer."""
        for record in zone.current().apex:
            yield zone.name, record
        suffix = "." + zone.name
        for name, host in list(self.hosts.items()):
            if not name.endswith(suffix) or self.zone_of(name) is not zone:
                continue
            if type(host) is str:
                yield name, ("A", zone.host_ttl, host)
                continue
            records: list[Record] = []
            self._addresses(host, zone, _ANY, records)  # type: ignore[arg-type]
            for record in records:
                yield name, record
            if host[3]:  # type: ignore[index]
                for record in records:
                    yield "*." + name, record
        for owner, entries in list(self.extra.items()):
            if owner.endswith(suffix) and self.zone_of(owner) is zone:
                for _, rtype, ttl, content in entries:
                    yield owner, (rtype, zone.host_ttl if ttl is None else ttl, content)

    # -- NSEC3 chains -----------------------------------------------------------------------------------

    def zone_names(self, zone: Zone) -> set[str]:
        """Every name of a zone with records of its own, below the apex: hosts, their wildcard names and
        the owners of extra records (names in a zone further down are that zone's)."""
        return self._names_of({zone.id})[zone.id]

    def _names_of(self, zone_ids: set[int]) -> dict[int, set[str]]:
        """:meth:`zone_names` of several zones in one pass over the hosts."""
        out: dict[int, set[str]] = {zone_id: set() for zone_id in zone_ids}
        zone_of = self.zone_of
        for name, host in list(self.hosts.items()):
            zone = zone_of(name)
            if zone is not None and zone.id in out and name != zone.name:
                names = out[zone.id]
                names.add(name)
                if type(host) is not str and host[3]:  # type: ignore[index]
                    names.add("*." + name)
        for owner in list(self.extra):
            zone = zone_of(owner)
            if zone is not None and zone.id in out and owner != zone.name:
                out[zone.id].add(owner)
        return out

    def has_own_records(self, zone: Zone, name: str) -> bool:
        """Whether ``name`` (below the apex of ``zone``) is a name of the zone with records of its own."""
        if self.zone_of(name) is not zone:
            return False
        if name in self.hosts or name in self.extra:
            return True
        if name.startswith("*."):
            base = self.hosts.get(name[2:])
            return base is not None and type(base) is not str and bool(base[3])
        return False

    def chain(self, zone: Zone) -> nsec3.Chain:
        """The zone's NSEC3 chain, built now if it is not yet (the follower builds it off the query path)."""
        found = self.chains.get(zone.id)
        if found is not None:
            return found
        self._build_chains([zone])
        return self.chains[zone.id]

    def _build_chains(self, zones: list[Zone]) -> None:
        with self._chain_lock:
            missing = {zone.id: zone for zone in zones if zone.id not in self.chains}
            if not missing:
                return
            for zone_id, names in self._names_of(set(missing)).items():
                zone = missing[zone_id]
                salt, iterations = nsec3.parse_param(zone.row.nsec3param)
                self.chains[zone_id] = nsec3.build(zone.name, names, salt, iterations)

    def sync_chains(self, names: Iterable[str] = ()) -> set[str]:
        """Keep the NSEC3 chains in line with the index after a change: build those of zones signed with a
        chain, drop the others', and bring the changed ``names`` (with their wildcard names) up to date.

        :returns: the zones whose chain changed (their cached denials of existence are stale).
        """
        changed: set[str] = set()
        for zone_id in list(self.chains):
            zone = self.zones_by_id.get(zone_id)
            if zone is None or not zone.chained:
                del self.chains[zone_id]
        missing = [zone for zone in list(self.zones.values()) if zone.chained and zone.id not in self.chains]
        if missing:
            self._build_chains(missing)
        for name in names:
            zone = self.zone_of(name)
            if zone is None or name == zone.name:
                continue
            chain = self.chains.get(zone.id)
            if chain is None:
                continue
            for each in (name, "*." + name):
                if chain.set_real(each, self.has_own_records(zone, each)):
                    changed.add(zone.name)
        return changed

    def stats(self) -> dict[str, int]:
        return {"zones": len(self.zones), "hosts": len(self.hosts), "extra_names": len(self.extra)}


def build(
    zone_rows: Iterable[ZoneRow],
    host_rows: Iterable[tuple],
    record_rows: Iterable[tuple],
    default_ttl: int = 60,
) -> ZoneIndex:
    """A whole index from the store's rows.

    :param host_rows: ``(name, zone_id, ipv4, ipv6, ttl, wildcard)`` tuples.
    :param record_rows: ``(host name, owner name, type, content, ttl)`` tuples.
    """
    index = ZoneIndex(default_ttl)
    for row in zone_rows:
        index.set_zone(row)
    hosts = index.hosts
    for name, _zone_id, ipv4, ipv6, ttl, wildcard in host_rows:
        # The common case inline: this loop runs a million times at start.
        if ipv6 is None and ttl is None and not wildcard and ipv4 is not None:
            hosts[name] = ipv4
        else:
            index.set_host(name, ipv4, ipv6, ttl, bool(wildcard))
    for host, owner, rtype, content, ttl in record_rows:
        index.add_record(host, owner, rtype, content, ttl)
    return index
