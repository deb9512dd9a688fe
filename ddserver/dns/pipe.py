"""PowerDNS pipe backend protocol, ABI 1 to 5: one line in, the answer lines out (pure, no I/O).

A :class:`PipeSession` holds the ABI agreed in the handshake; ``handle`` turns each request line into the
complete text to write back, always ending in ``END`` or ``FAIL`` so PowerDNS never waits in vain.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line answers the handshake before the index module is loaded
    from ddserver.dns.zoneindex import ZoneIndex

logger = logging.getLogger(__name__)

#: Longest request line accepted; PowerDNS's are far shorter (a name is at most 255 bytes).
MAX_LINE = 4096
BANNER = "ddserver recursor"


class Command(enum.StrEnum):
    """First field of a request line."""

    HELO = "HELO"
    Q = "Q"
    AXFR = "AXFR"
    CMD = "CMD"


class Reply(enum.StrEnum):
    """First field of an answer line."""

    OK = "OK"
    DATA = "DATA"
    END = "END"
    FAIL = "FAIL"
    LOG = "LOG"


ABI_VERSIONS = (1, 2, 3, 4, 5)
#: Fields of a Q line per ABI: Q qname qclass qtype id remote [local [real-remote]].
_Q_FIELDS = {1: 6, 2: 7, 3: 8, 4: 8, 5: 8}
_END = "END\n"
_END_BYTES = _END.encode()
#: The query types PowerDNS asks most, as they come in a request line (saves decoding them).
_QTYPES = {t.encode(): t for t in ("SOA", "ANY", "A", "AAAA", "NS", "TXT", "CNAME", "MX", "SRV", "PTR", "DS", "DNSKEY")}
_FAIL = "FAIL\n"


def _log_line(message: str) -> str:
    return "LOG\t" + message.replace("\n", " ").replace("\t", " ")[:400] + "\n"


def fail(message: str) -> str:
    """A ``LOG`` line with the reason, then ``FAIL`` (PowerDNS answers SERVFAIL)."""
    return _log_line(message) + _FAIL


class PipeSession:
    """One coprocess conversation with PowerDNS.

    :param index: a callable returning the current index (it is replaced on a full reload), or None while
        nothing is loaded yet (queries then FAIL, so PowerDNS retries rather than caching NXDOMAIN).
    :param commands: answers to ``CMD`` (ABI 5): name -> function returning lines.
    """

    def __init__(
        self,
        index: Callable[[], ZoneIndex | None],
        commands: dict[str, Callable[[list[str]], list[str]]] | None = None,
        on_query: Callable[[str, int], None] | None = None,
    ) -> None:
        self._index = index
        self.abi: int | None = None
        self.commands = commands or {}
        #: Called with (qtype, number of records) for each answered query (metrics).
        self.on_query = on_query
        #: Signed zones already reported as served unsigned by this session.
        self._unsigned: set[str] = set()

    def handle(self, line: str) -> str:
        """The full answer to one request line (without its newline)."""
        if len(line) > MAX_LINE:
            logger.warning("pipe: request line of %d bytes refused", len(line))
            return fail("request line too long")
        fields = line.split("\t")
        command = fields[0]
        if command == "Q" and self.abi is not None:
            return self._query(fields)
        if command == "HELO":
            return self._helo(fields)
        if self.abi is None:
            logger.warning("pipe: %r before the handshake", line[:80])
            return fail("expected HELO first")
        if command == "AXFR":
            return self._axfr(fields)
        if command == "CMD" and self.abi >= 5:
            return self._cmd(fields)
        logger.warning("pipe: unknown or malformed request %r", line[:80])
        return fail(f"unknown request {command[:40]!r}")

    def _helo(self, fields: list[str]) -> str:
        try:
            abi = int(fields[1]) if len(fields) == 2 else 0
        except ValueError:
            abi = 0
        if abi not in ABI_VERSIONS:
            logger.warning("pipe: unsupported handshake %r", "\t".join(fields)[:80])
            return fail("unsupported ABI version; this backend speaks 1 to 5")
        self.abi = abi
        return f"OK\t{BANNER} (ABI {abi})\n"

    def query(self, request: bytes) -> bytes | None:
        """The answer to one ``Q`` request exactly as read (a single line with its newline), in one step:
        the I/O loops' path for a question not in their cache, and the one way queries are answered. None
        for anything else (a partial line, several lines, another request, a query malformed for the agreed
        ABI, nothing loaded yet), which :meth:`handle` answers, with its log line."""
        fields = request.split(b"\t")
        if len(fields) != _Q_FIELDS.get(self.abi) or fields[0] != b"Q":  # type: ignore[arg-type]
            return None
        if request.find(b"\n") != len(request) - 1 or len(request) > MAX_LINE + 1:
            return None
        index = self._index()
        if index is None:
            return None
        qname = fields[1].decode("latin-1")
        qtype = _QTYPES.get(fields[3]) or fields[3].decode("latin-1").upper()
        name = qname.lower()
        if name[-1:] == ".":
            name = name[:-1]
        zone, records = index.lookup(name, qtype)
        if self.on_query is not None:
            self.on_query(qtype, -1 if zone is None else len(records))
        if zone is not None and zone.signed and zone.name not in self._unsigned:
            self._unsigned.add(zone.name)
            logger.error(
                "zone %s has DNSSEC on, but the pipe backend cannot serve signatures: its answers are UNSIGNED "
                "and fail validation once its DS is at the parent. Serve it through the remote backend "
                "(docs/dnssec.md)",
                zone.name,
            )
        if not records:
            return _END_BYTES
        zid = zone.id  # type: ignore[union-attr]
        head = f"DATA\t{qname}\tIN\t" if self.abi < 3 else f"DATA\t0\t1\t{qname}\tIN\t"  # type: ignore[operator]
        if len(records) == 1:  # the usual answer: one address
            rtype, ttl, content = records[0]
            text = f"{head}{rtype}\t{ttl}\t{zid}\t{_pipe_content(rtype, content)}\n{_END}"
        else:
            text = "".join([f"{head}{r}\t{ttl}\t{zid}\t{_pipe_content(r, content)}\n" for r, ttl, content in records])
            text += _END
        return text.encode("latin-1", "replace")

    def _query(self, fields: list[str]) -> str:
        abi = self.abi
        assert abi is not None
        if len(fields) != _Q_FIELDS[abi]:
            logger.warning("pipe: malformed query %r for ABI %d", "\t".join(fields)[:120], abi)
            return fail(f"malformed query: ABI {abi} expects {_Q_FIELDS[abi]} fields")
        if self._index() is None:
            return fail("zone data not loaded yet")
        # The fields came from bytes decoded as latin-1: encoding them again gives the request back.
        answer = self.query(("\t".join(fields) + "\n").encode("latin-1", "replace"))
        if answer is None:  # a line break inside the request: only a caller of handle can send one
            logger.warning("pipe: malformed query %r", "\t".join(fields)[:120])
            return fail("malformed query")
        return answer.decode("latin-1")

    def _axfr(self, fields: list[str]) -> str:
        index = self._index()
        if index is None:
            return fail("zone data not loaded yet")
        try:
            zone_id = int(fields[1])
        except (IndexError, ValueError):
            return fail("malformed AXFR request")
        zone = index.zones_by_id.get(zone_id)
        if zone is None and len(fields) > 2:
            zone = index.zones.get(fields[2].lower().rstrip("."))
        if zone is None:
            logger.warning("pipe: AXFR of unknown zone %r", "\t".join(fields)[:80])
            return fail("no such zone")
        prefix = "DATA\t" if (self.abi or 1) < 3 else "DATA\t0\t1\t"
        out = [
            f"{prefix}{owner}\tIN\t{rtype}\t{ttl}\t{zone.id}\t{_pipe_content(rtype, content)}\n"
            for owner, (rtype, ttl, content) in index.list_zone(zone)
        ]
        out.append(_END)
        return "".join(out)

    def _cmd(self, fields: list[str]) -> str:
        words = " ".join(fields[1:]).split()
        if not words:
            return "commands: " + ", ".join(sorted(self.commands)) + "\n" + _END
        handler = self.commands.get(words[0].lower())
        if handler is None:
            return f"unknown command {words[0][:40]!r}; commands: {', '.join(sorted(self.commands))}\n" + _END
        lines = handler(words[1:])
        return "".join(line.replace("\n", " ") + "\n" for line in lines) + _END


def _pipe_content(rtype: str, content: str) -> str:
    # The pipe backend wants the priority of MX and SRV in a field of its own.
    if rtype == "MX" or rtype == "SRV":
        return content.replace(" ", "\t", 1)
    return content
