"""PowerDNS remote backend protocol (JSON over a pipe or a unix socket): one message in, one out (pure).

Every request gets exactly one answer object; anything unknown or malformed gets ``{"result": false}``
with a log entry, which PowerDNS treats as "nothing here" or as a failure, never as a reason to hang.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _js  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from ddserver.errors import DDServerError

if TYPE_CHECKING:  # the command line answers the handshake before the index module is loaded
    from ddserver.dns.dnssec import NewKey
    from ddserver.dns.zoneindex import Zone, ZoneIndex
    from ddserver.store.dnsdata import ZoneRow

logger = logging.getLogger(__name__)

#: Longest request accepted; PowerDNS's are a few hundred bytes.
MAX_MESSAGE = 65536


class Method(enum.StrEnum):
    """Remote backend methods this backend answers (matched case-insensitively)."""

    INITIALIZE = "initialize"
    LOOKUP = "lookup"
    LIST = "list"
    GET_ALL_DOMAINS = "getalldomains"
    GET_DOMAIN_INFO = "getdomaininfo"
    GET_ALL_DOMAIN_METADATA = "getalldomainmetadata"
    GET_DOMAIN_METADATA = "getdomainmetadata"
    DIRECT_BACKEND_CMD = "directbackendcmd"
    GET_DOMAIN_KEYS = "getdomainkeys"
    GET_BEFORE_AND_AFTER_NAMES_ABSOLUTE = "getbeforeandafternamesabsolute"
    GET_UPDATED_MASTERS = "getupdatedmasters"
    SET_NOTIFIED = "setnotified"
    GET_TSIG_KEY = "gettsigkey"


#: Calls with which PowerDNS's tools (pdnsutil, the HTTP API) would change keys or metadata. Unless the
#: handler is given a key writer ([recursor] key_changes = yes), these are refused, pointing at the command
#: that does it; setDomainMetadata always is (the metadata is derived from the zone's settings).
REFUSED_WRITES = {
    "adddomainkey": "ddserver zone key add",
    "removedomainkey": "ddserver zone key remove",
    "activatedomainkey": "ddserver zone key activate",
    "deactivatedomainkey": "ddserver zone key deactivate",
    "publishdomainkey": "ddserver zone key publish",
    "unpublishdomainkey": "ddserver zone key unpublish",
    "setdomainmetadata": "ddserver zone dnssec",
}


class KeyAction(enum.StrEnum):
    """Changes to a zone's keys PowerDNS may ask for (by method name, lower case)."""

    ADD = "adddomainkey"
    REMOVE = "removedomainkey"
    ACTIVATE = "activatedomainkey"
    DEACTIVATE = "deactivatedomainkey"
    PUBLISH = "publishdomainkey"
    UNPUBLISH = "unpublishdomainkey"


@dataclass(frozen=True)
class KeyChange:
    """One change to a signed zone's keys, checked, for the key writer to store.

    ``key``: for ADD, the new key (its private key text as PowerDNS made it: seal it before storing) with
    ``active`` and ``published`` as asked; ``key_id``: the key the other actions change.
    """

    action: KeyAction
    zone: str
    key_id: int = 0
    key: NewKey | None = field(default=None, repr=False)
    active: bool = False
    published: bool = True


class Metadata(enum.StrEnum):
    """Domain metadata kinds this backend derives from a zone's settings."""

    ALSO_NOTIFY = "ALSO-NOTIFY"
    TSIG_ALLOW_AXFR = "TSIG-ALLOW-AXFR"
    ALLOW_AXFR_FROM = "ALLOW-AXFR-FROM"


#: How PowerDNS (json11: keys sorted, ": " and ", " between them) starts a lookup request.
LOOKUP_PREFIX = b'{"method": "lookup", '
# A whole lookup request exactly as PowerDNS writes it, with plain names: read without a JSON parser.
# Anything else (escapes, other fields or spacing) goes through json.loads.
_LOOKUP = re.compile(
    rb'\{"method": "lookup", "parameters": \{"local": "[0-9A-Fa-f.:]{1,45}", "qname": "([0-9A-Za-z_.*-]{1,255})", '
    rb'"qtype": "([0-9A-Z]{1,10})", "real-remote": "[0-9A-Fa-f.:/]{1,49}", "remote": "[0-9A-Fa-f.:]{1,45}", '
    rb'"zone-id": -?[0-9]{1,10}\}\}'
)

FALSE = '{"result":false}'
TRUE = '{"result":true}'
EMPTY_LIST = '{"result":[]}'


def false(message: str) -> str:
    """``{"result": false}`` with a log entry for PowerDNS's log."""
    return '{"result":false,"log":[' + _js(message[:400]) + "]}"


def _record(qname: str, rtype: str, ttl: int, content: str, zone_id: int) -> str:
    return (
        '{"qtype":"' + rtype + '","qname":' + qname + ',"content":' + _js(content) + ',"ttl":' + str(ttl)
        + ',"domain_id":' + str(zone_id) + "}"
    )  # fmt: skip


def _domain(zone: Zone, notified: int | None) -> str:
    # "master": PowerDNS (primary=yes) notifies the secondaries of zones of this kind; the zone cache reads
    # only the id and the name, so every zone is served as one.
    return (
        '{"id":' + str(zone.id) + ',"zone":' + _js(zone.name + ".") + ',"kind":"master","serial":'
        + str(zone.current().serial) + ',"notified_serial":' + str(notified or 0) + ',"masters":[]}'
    )  # fmt: skip


def transfer_key_context(name: str) -> str:
    """The context a transfer key's secret is sealed with (its name, lower case, no final dot)."""
    return "transfer-tsig:" + name.lower().rstrip(".")


def metadata_for(row: ZoneRow, *, allow_axfr_from: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The domain metadata PowerDNS reads for a zone (getDomainMetadata, getAllDomainMetadata), derived
    from the zone's settings, never stored as such (ddserver manages it; ``setDomainMetadata`` is refused);
    kinds without a value are left out.

    - NSEC3PARAM, and NSEC3NARROW unless the zone has secondaries: for a signed zone (``dns/dnssec.py``).

    - ALSO-NOTIFY: the addresses notified besides the nameservers' (``address`` or ``address:port``).
    - TSIG-ALLOW-AXFR: the names of the keys that may transfer the zone; PowerDNS signs its NOTIFY with
      the first one.
    - ALLOW-AXFR-FROM: ``allow_axfr_from`` (networks that may transfer unsigned), only for a zone without
      transfer keys: PowerDNS lets an unsigned request through when its address is in that list.
    """
    from ddserver.dns import dnssec, zoneindex  # the handshake path never needs them

    meta = dnssec.metadata_for(row.dnssec, row.nsec3param, row.keys, chained=zoneindex.nsec3_chained(row))
    if row.also_notify:
        meta[Metadata.ALSO_NOTIFY.value] = list(row.also_notify)
    if row.transfer_keys:
        meta[Metadata.TSIG_ALLOW_AXFR.value] = [key[0] for key in row.transfer_keys]
    elif allow_axfr_from:
        meta[Metadata.ALLOW_AXFR_FROM.value] = list(allow_axfr_from)
    return meta


class RemoteHandler:
    """Answers remote backend messages from the current index.

    :param index: returns the current index, or None while nothing is loaded (lookups then fail).
    :param commands: answers to ``directBackendCmd``: name -> function returning lines.
    :param on_query: called with (qtype, number of records, -1 for a foreign name) for metrics.
    :param unseal: opens a sealed DNSSEC private key or transfer key secret: ``unseal(sealed, context)``
        (``sealing.Sealer.unseal``); None: no keys are given to PowerDNS (signed zones are served unsigned,
        logged; getTSIGKey fails).
    :param allow_axfr_from: networks that may transfer a zone without transfer keys unsigned.
    :param write_key: stores a change to a signed zone's keys (``addDomainKey`` and the others of
        :class:`KeyAction`), returning the new key's id for ADD; raises a :class:`DDServerError` when it
        cannot (no such key, the database failed). None: those calls are refused ([recursor] key_changes).
    """

    def __init__(
        self,
        index: Callable[[], ZoneIndex | None],
        commands: dict[str, Callable[[list[str]], list[str]]] | None = None,
        on_query: Callable[[str, int], None] | None = None,
        *,
        unseal: Callable[[str, str], str] | None = None,
        allow_axfr_from: tuple[str, ...] = (),
        write_key: Callable[[KeyChange], int] | None = None,
    ) -> None:
        self._index = index
        self.commands = commands or {}
        self.on_query = on_query
        #: Private keys opened, by sealed text (opening one costs a few microseconds, but PowerDNS asks often).
        self._opened: dict[str, str] = {}
        #: Zones whose keys could not be opened, logged once each.
        self._unopened: set[str] = set()
        self.unseal = unseal
        self.allow_axfr_from = allow_axfr_from
        self.write_key = write_key
        #: The serial PowerDNS last notified each zone's secondaries of (setNotified), by zone id. Kept in
        #: memory only, as the recursor never writes to the database: after a restart every zone is
        #: notified once more, which secondaries answer by checking the serial.
        self.notified: dict[int, int] = {}
        #: getAllDomains was refused before the first load: PowerDNS's zone cache is empty until told.
        self.refused_domains = False
        self._methods: dict[str, Callable[[dict[str, Any]], str]] = {
            Method.INITIALIZE.value: lambda p: TRUE,
            Method.LOOKUP.value: self._lookup,
            Method.LIST.value: self._list,
            Method.GET_ALL_DOMAINS.value: self._all_domains,
            Method.GET_DOMAIN_INFO.value: self._domain_info,
            Method.GET_ALL_DOMAIN_METADATA.value: self._all_metadata,
            Method.GET_DOMAIN_METADATA.value: self._metadata,
            Method.DIRECT_BACKEND_CMD.value: self._command,
            Method.GET_DOMAIN_KEYS.value: self._domain_keys,
            Method.GET_BEFORE_AND_AFTER_NAMES_ABSOLUTE.value: self._before_and_after,
            Method.GET_UPDATED_MASTERS.value: self._updated_masters,
            Method.SET_NOTIFIED.value: self._set_notified,
            Method.GET_TSIG_KEY.value: self._tsig_key,
        }
        for method, command in REFUSED_WRITES.items():
            self._methods[method] = functools.partial(self._refuse, method, command)
        if write_key is not None:
            for action in KeyAction:
                self._methods[action.value] = functools.partial(self._change_key, action)

    def handle(self, message: bytes | str) -> str:
        """The answer (one JSON object, no newline) to one request."""
        if len(message) > MAX_MESSAGE:
            logger.warning("remote: message of %d bytes refused", len(message))
            return false("message too long")
        if type(message) is bytes:
            plain = _LOOKUP.fullmatch(message)
            if plain is not None:
                return self._answer(plain.group(1).decode("ascii"), plain.group(2).decode("ascii"))
        try:
            request = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("remote: bad JSON: %s", str(exc)[:120])
            return false("bad JSON")
        if not isinstance(request, dict):
            logger.warning("remote: request is not an object")
            return false("request is not a JSON object")
        method = request.get("method")
        params = request.get("parameters")
        if params is None:
            params = {}
        if not isinstance(method, str) or not isinstance(params, dict):
            logger.warning("remote: request without method or parameters object")
            return false("request needs a method name and a parameters object")
        handler = self._methods.get(method.lower())
        if handler is None:
            logger.debug("remote: %s is not supported", method[:60])
            return false(f"{method[:60]} is not supported")
        try:
            return handler(params)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("remote: malformed %s request: %s", method[:60], exc)
            return false(f"malformed {method[:60]} request")

    def _lookup(self, params: dict[str, Any]) -> str:
        qname = params["qname"]
        qtype = params["qtype"]
        if not isinstance(qname, str) or not isinstance(qtype, str):
            raise TypeError("qname and qtype must be strings")
        return self._answer(qname, qtype)

    def query(self, request: bytes) -> bytes | None:
        """The answer, with its newline, to one lookup exactly as PowerDNS writes it and as it was read (a
        single line with its newline), in one step: the I/O loops' path for a question not in their cache.
        None for anything else, and while nothing is loaded; :meth:`handle` answers those."""
        plain = _LOOKUP.fullmatch(request, 0, len(request) - 1)
        if plain is None or request[-1:] != b"\n":
            return None
        index = self._index()
        if index is None:
            return None
        return (
            self._answer_from(index, plain.group(1).decode("ascii"), plain.group(2).decode("ascii")) + "\n"
        ).encode()

    def _answer(self, qname: str, qtype: str) -> str:
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        return self._answer_from(index, qname, qtype)

    def _answer_from(self, index: ZoneIndex, qname: str, qtype: str) -> str:
        name = qname.lower()
        if name.endswith("."):
            name = name[:-1]
        qtype = qtype.upper()
        zone, records = index.lookup(name, qtype)
        if self.on_query is not None:
            self.on_query(qtype, -1 if zone is None else len(records))
        if zone is None:
            return FALSE
        if not records:
            if zone.chained and name in index.chain(zone).ents:
                # An empty non-terminal of a zone with an NSEC3 chain: it exists (NODATA, proved by its
                # NSEC3), as in the chain that AXFR sends.
                return (
                    '{"result":[{"qtype":"ENT","qname":'
                    + _js(qname)
                    + ',"content":"","ttl":0,"domain_id":'
                    + str(zone.id)
                    + "}]}"
                )
            return EMPTY_LIST
        quoted = _js(qname)
        zid = zone.id
        return (
            '{"result":['
            + ",".join([_record(quoted, rtype, ttl, content, zid) for rtype, ttl, content in records])
            + "]}"
        )

    def _find_zone(self, index: ZoneIndex, params: dict[str, Any], key: str) -> Zone | None:
        zone_id = params.get("domain_id", params.get("id"))
        if isinstance(zone_id, int) and zone_id in index.zones_by_id:
            return index.zones_by_id[zone_id]
        name = params.get(key)
        if isinstance(name, str):
            return index.zones.get(name.lower().rstrip("."))
        return None

    def _list(self, params: dict[str, Any]) -> str:
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        zone = self._find_zone(index, params, "zonename")
        if zone is None:
            return false("no such zone")
        zid = zone.id
        return (
            '{"result":['
            + ",".join(
                [
                    _record(_js(owner + "."), rtype, ttl, content, zid)
                    for owner, (rtype, ttl, content) in index.list_zone(zone)
                ]
            )
            + "]}"
        )

    def _all_domains(self, params: dict[str, Any]) -> str:
        index = self._index()
        if index is None:
            # An empty list would mean "all REFUSED" until the next zone cache refresh; the shell asks
            # PowerDNS to rediscover once the data is loaded.
            self.refused_domains = True
            return false("zone data not loaded yet")
        notified = self.notified
        return '{"result":[' + ",".join([_domain(z, notified.get(z.id)) for z in list(index.zones.values())]) + "]}"

    def _domain_info(self, params: dict[str, Any]) -> str:
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        zone = self._find_zone(index, params, "name")
        if zone is None:
            return FALSE
        return '{"result":' + _domain(zone, self.notified.get(zone.id)) + "}"

    def _zone_metadata(self, params: dict[str, Any]) -> dict[str, list[str]] | None:
        index = self._index()
        if index is None:
            return None
        zone = self._find_zone(index, params, "name")
        if zone is None:
            return {}
        return metadata_for(zone.row, allow_axfr_from=self.allow_axfr_from)

    def _all_metadata(self, params: dict[str, Any]) -> str:
        meta = self._zone_metadata(params)
        if meta is None:
            return false("zone data not loaded yet")
        return json.dumps({"result": meta}, separators=(",", ":"))

    def _metadata(self, params: dict[str, Any]) -> str:
        kind = params["kind"]
        if not isinstance(kind, str):
            raise TypeError("kind must be a string")
        meta = self._zone_metadata(params)
        if meta is None:
            return false("zone data not loaded yet")
        return json.dumps({"result": meta.get(kind.upper(), [])}, separators=(",", ":"))

    def _updated_masters(self, params: dict[str, Any]) -> str:
        """The zones whose serial changed since PowerDNS last notified their secondaries (all of them at
        first): PowerDNS notifies them and then calls setNotified."""
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        notified = self.notified
        changed = [z for z in list(index.zones.values()) if notified.get(z.id) != z.current().serial]
        return '{"result":[' + ",".join([_domain(z, notified.get(z.id)) for z in changed]) + "]}"

    def _set_notified(self, params: dict[str, Any]) -> str:
        zone_id, serial = params["id"], params["serial"]
        if not isinstance(zone_id, int | float) or not isinstance(serial, int | float):
            raise TypeError("id and serial must be numbers")
        self.notified[int(zone_id)] = int(serial)
        return TRUE

    def _tsig_key(self, params: dict[str, Any]) -> str:
        """A transfer key by name: ``{algorithm, content}`` (the secret in base64), for PowerDNS to check a
        signed transfer request and to sign its NOTIFY."""
        name = params["name"]
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        wanted = name.lower().rstrip(".")
        for zone in list(index.zones.values()):
            for key_name, algorithm, sealed in zone.row.transfer_keys:
                if key_name != wanted:
                    continue
                if self.unseal is None:
                    return false("no data key to open transfer keys with")
                try:
                    secret = self.unseal(sealed, transfer_key_context(key_name))
                except (DDServerError, ValueError) as exc:  # a key that cannot be opened is refused, logged
                    logger.warning("remote: transfer key %s cannot be opened: %s", key_name, exc)
                    return false("transfer key cannot be opened")
                return '{"result":{"algorithm":' + _js(algorithm) + ',"content":' + _js(secret) + "}}"
        return false("no such TSIG key")

    def _command(self, params: dict[str, Any]) -> str:
        words = str(params.get("query", "")).split()
        handler = self.commands.get(words[0].lower()) if words else None
        text = "commands: " + ", ".join(sorted(self.commands)) if handler is None else "\n".join(handler(words[1:]))
        return '{"result":' + _js(text) + "}"

    # -- DNSSEC -----------------------------------------------------------------------------------------

    def _zone_row(self, params: dict[str, Any]) -> ZoneRow | None:
        index = self._index()
        if index is None:
            return None
        zone = self._find_zone(index, params, "name")
        return None if zone is None else zone.row

    def _before_and_after(self, params: dict[str, Any]) -> str:
        """For a zone signed with an NSEC3 chain: the hash at or before the asked one (``qname``, a hashed
        label) with the name behind it, and the hash after it, wrapping around the chain; PowerDNS makes
        the NSEC3 records of its denials of existence from them."""
        from ddserver.dns import nsec3  # the handshake path never needs it

        qname = params["qname"]
        if not isinstance(qname, str):
            raise TypeError("qname must be a string")
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        zone_id = params.get("id")
        zone = index.zones_by_id.get(int(zone_id)) if isinstance(zone_id, int | float) else None
        if zone is None or not zone.chained:
            return false("no zone signed with an NSEC3 chain with this id")
        key = nsec3.from_label(qname.rstrip(".").split(".", 1)[0])
        if key is None:
            return false("qname is not an NSEC3 hash")
        try:
            before, name, after = index.chain(zone).neighbours(key)
        except LookupError:  # never: the chain holds the apex at least
            return false("empty NSEC3 chain")
        return (
            '{"result":{"before":"' + nsec3.to_label(before) + '","after":"' + nsec3.to_label(after)
            + '","unhashed":' + _js(name + ".") + "}}"
        )  # fmt: skip

    def _domain_keys(self, params: dict[str, Any]) -> str:
        """The zone's keys with their private key text, as PowerDNS signs with them; none for a zone that is
        not signed. A key that cannot be opened (no data key, another one) leaves the zone unsigned, logged
        once: PowerDNS cannot sign without it."""
        row = self._zone_row(params)
        if row is None or not row.dnssec or not row.keys:
            return EMPTY_LIST
        keys = []
        context = "dnssec:" + row.name
        for key_id, flags, active, published, sealed in row.keys:
            content = self._opened.get(sealed)
            if content is None:
                if self.unseal is None:
                    return self._unopenable(row.name, "no data key configured ([auth] data_key)")
                try:
                    content = self.unseal(sealed, context)
                except Exception as exc:  # noqa: BLE001 - sealing.SealingError, kept out of this pure module
                    return self._unopenable(row.name, str(exc))
                if len(self._opened) >= 1000:
                    self._opened.clear()  # keys removed long ago need not stay open in memory
                self._opened[sealed] = content
            keys.append({"id": key_id, "flags": flags, "active": active, "published": published, "content": content})
        self._unopened.discard(row.name)
        return json.dumps({"result": keys}, separators=(",", ":"))

    def _unopenable(self, zone: str, why: str) -> str:
        if zone not in self._unopened:
            self._unopened.add(zone)
            logger.error("DNSSEC keys of zone %s cannot be opened (%s): PowerDNS serves it UNSIGNED", zone, why)
        return false(f"DNSSEC keys of {zone} cannot be opened")

    def _change_key(self, action: KeyAction, params: dict[str, Any]) -> str:
        """Store a change PowerDNS's tools made to a signed zone's keys ([recursor] key_changes = yes): the
        new key's id for addDomainKey, true for the others, false (logged) when it cannot be done. Every
        recursor (this one too) sees the change through the change feed."""
        from ddserver.dns import dnssec  # the handshake path never needs it

        assert self.write_key is not None
        name = params["name"]
        if not isinstance(name, str):
            raise TypeError("name must be a string")
        index = self._index()
        if index is None:
            return false("zone data not loaded yet")
        zone = self._find_zone(index, {"name": name}, "name")
        if zone is None:
            logger.warning("remote: %s for %s refused: no such zone", action.value, name[:255])
            return false("no such zone")
        if not zone.row.dnssec:
            logger.warning(
                "remote: %s for %s refused: the zone is not signed (use 'ddserver zone dnssec %s on')",
                action.value, zone.name, zone.name,
            )  # fmt: skip
            return false(f"zone {zone.name} is not signed; use 'ddserver zone dnssec {zone.name} on'")
        if action is KeyAction.ADD:
            key = params["key"]
            flags, content = key["flags"], key["content"]
            active, published = key.get("active", False), key.get("published", True)
            if not (isinstance(flags, int) and isinstance(content, str) and isinstance(active, bool)):
                raise TypeError("key needs flags, content and active")
            if not isinstance(published, bool):
                raise TypeError("published must be a boolean")
            try:
                new = dnssec.from_private_text(content, flags)
            except DDServerError as exc:  # the message never holds the key
                logger.warning("remote: addDomainKey for %s refused: %s", zone.name, exc)
                return false(f"addDomainKey refused: {exc}")
            change = KeyChange(action, zone.name, key=new, active=active, published=published)
        else:
            key_id = params["id"]
            if not isinstance(key_id, int) or isinstance(key_id, bool):
                raise TypeError("id must be a number")
            change = KeyChange(action, zone.name, key_id)
        try:
            key_id = self.write_key(change)
        except DDServerError as exc:
            logger.warning("remote: %s for %s failed: %s", action.value, zone.name, exc)
            return false(f"{action.value} failed")
        logger.info("remote: %s: key %d of zone %s (asked through PowerDNS)", action.value, key_id, zone.name)
        return '{"result":' + str(key_id) + "}" if action is KeyAction.ADD else TRUE

    def _refuse(self, method: str, command: str, params: dict[str, Any]) -> str:
        name = str(params.get("name", ""))[:255]
        other = "" if method == "setdomainmetadata" else ", or allow it with [recursor] key_changes = yes"
        logger.warning(
            "remote: %s for %s refused: ddserver keeps DNSSEC keys and metadata in its database (use '%s'%s)",
            method, name, command, other,
        )  # fmt: skip
        return false(f"{method} refused: ddserver manages keys and metadata; use '{command}'")
