"""The recursor's I/O shells: a line loop on stdin/stdout (pipe and remote pipe) and a unix-socket server
that serves many PowerDNS connections from one thread and one shared index, with an answer cache."""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ddserver.recursor.metrics import QueryCounter

logger = logging.getLogger(__name__)

#: Turns one request line (without its newline) into the complete answer bytes.
Responder = Callable[[bytes], bytes]
#: Answers a whole request as read (its newline included) in one step, or None to leave it to a Responder.
Quick = Callable[[bytes], "bytes | None"]


class HasGeneration(Protocol):
    generation: int


class ResponseCache:
    """Remembers answers by the exact request line while the index's generation is unchanged.

    PowerDNS asks the same questions over and over (the zone's SOA for every query, the name twice); a hit
    costs one dict read. The I/O loops ask each request, whole as read, before they split it into lines
    (:meth:`asker`), and a handler's path for a question in one step (:meth:`PipeSession.query`) answers
    the misses, without splitting, decoding or dispatching (through PowerDNS a coprocess's lookup costs
    mostly its wake-up: docs/recursor.md has the figures). The cache is emptied as soon as the serving
    thread sees a new generation; the follower bumps it after a load or an applied batch is complete, so an
    answer computed while a change was being applied is dropped before the next request. Only one thread
    may answer through a cache.

    :param source: the follower (anything with a ``generation`` attribute, bumped after each change).
    :param counter: counts every answer, cached or not, by what the handler counted it as (``note``);
        None where no metrics are served (the coprocesses), which spares the hot path that work.
    :param limit: entries kept at most; the cache starts again empty when full.
    """

    def __init__(self, source: HasGeneration, counter: QueryCounter | None = None, limit: int = 100000) -> None:
        self.source = source
        self.limit = limit
        #: Request line, newline included (as it is read) -> answer. Bytes only: nothing the cycle collector
        #: has to look at (a tuple per entry cost a tenth of a lookup in collections).
        self.entries: dict[bytes, bytes] = {}
        #: Request line -> what its answer counted as (one shared tuple per kind), while counting.
        self.kinds: dict[bytes, tuple[str, str]] = {}
        self._kinds: dict[tuple[str, str], tuple[str, str]] = {}
        self.generation = -1
        self._last: tuple[str, int] | None = None
        self.counts = counter.counts if counter is not None else None
        #: The answer to a request if it is cached (see :meth:`asker`).
        self.hit = self.asker()

    def note(self, qtype: str, records: int) -> None:
        """The handlers' ``on_query``: remembers what the answer just computed counts as."""
        self._last = (qtype, records)

    @property
    def on_query(self) -> Callable[[str, int], None] | None:
        """What a handler answering through :meth:`asker` needs as its ``on_query``: nothing unless counting."""
        return self.note if self.counts is not None else None

    def clear(self) -> None:
        self.entries.clear()
        self.kinds.clear()

    def asker(self, query: Quick | None = None, max_answer: int = 8192) -> Quick:
        """What the I/O loops ask with each request as read (one whole line with its newline; never data
        that continues a line): the cached answer, else ``query``'s (a lookup answered in one step, never a
        failure), kept; None for the rest. Each call checks the generation first."""
        entries, kinds, counts, source, keep = self.entries, self.kinds, self.counts, self.source, self._keep

        def ask(request: bytes) -> bytes | None:
            generation = source.generation
            if generation != self.generation:
                self.clear()
                self.generation = generation
            answer = entries.get(request)
            if answer is not None:
                if counts is not None:
                    key = kinds[request]
                    counts[key] = counts.get(key, 0) + 1
                return answer
            if query is None:
                return None
            self._last = None
            answer = query(request)
            if answer is not None:
                keep(request, answer, max_answer)
            return answer

        return ask

    def wrap(self, respond: Responder, prefix: bytes, max_answer: int = 8192) -> Responder:
        """``respond`` with the cache in front, for the requests that start with ``prefix`` (lookups only:
        a handshake or a command has effects or changing answers). Only answers the handler counted as a
        lookup (``note``) are kept, never a failure, which may not repeat."""
        hit, keep = self.hit, self._keep

        def cached(line: bytes) -> bytes:
            plain = line.startswith(prefix)
            if plain:
                request = line + b"\n"
                found = hit(request)
                if found is not None:
                    return found
            self._last = None
            answer = respond(line)
            if self._last is not None:
                keep(request if plain else None, answer, max_answer)
            return answer

        return cached

    def _keep(self, request: bytes | None, answer: bytes, max_answer: int) -> None:
        """Count a lookup's answer as the handler noted it, and keep it by ``request`` (None: only count)."""
        key = None
        if self.counts is not None:
            if self._last is None:
                return  # not noted: neither counted nor kept (a hit could not be counted either)
            key = QueryCounter.key(*self._last)
            key = self._kinds.setdefault(key, key)
            self.counts[key] = self.counts.get(key, 0) + 1
        if request is None or len(answer) > max_answer:
            return
        if len(self.entries) >= self.limit:
            self.clear()
        self.entries[request] = answer
        if key is not None:
            self.kinds[request] = key


class LineSplitter:
    """Splits a byte stream into lines, refusing lines longer than ``max_line`` (pure)."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = b""
        self._discarding = False
        #: Part of a line is held: the next data continues it (and is no request of its own).
        self.partial = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """The complete lines in ``data`` so far; None stands for an oversized line (answer it with an error)."""
        if not self._buf and not self._discarding:
            # The usual case: PowerDNS sends one request and waits, so ``data`` is exactly one line.
            end = len(data) - 1
            if 0 <= end <= self.max_line and data.find(b"\n") == end:
                return [data[:end].rstrip(b"\r")]
        buf = self._buf + data if self._buf else data
        out: list[bytes | None] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end - start > self.max_line:
                out.append(None)
            else:
                out.append(buf[start:end].rstrip(b"\r"))
            start = end + 1
        rest = buf[start:]
        if len(rest) > self.max_line:
            if not self._discarding:
                out.append(None)
                self._discarding = True
            rest = b""
        self._buf = rest
        self.partial = bool(rest) or self._discarding
        return out


class StreamClock:
    """When :func:`serve_stream` last wrote an answer (monotonic clock)."""

    __slots__ = ("last_write",)

    def __init__(self, last_write: float = 0.0) -> None:
        self.last_write = last_write


class StreamProgress:
    """How far :func:`serve_stream` is: ``count`` goes up as it starts waiting for a request and again when
    one is read, so it is odd while waiting and even while answering; an even count that stays the same is
    one answer that is taking that long."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    @property
    def waiting(self) -> bool:
        return self.count % 2 == 1


class Watchdog:
    """Ends a coprocess that has been answering one request for ``timeout`` seconds without progress (each
    piece of a long answer written is progress), as PowerDNS's ``pipe-timeout`` would, for a PowerDNS that has
    none: it sees the coprocess exit, answers that question SERVFAIL and starts a new one. ``end`` is called
    once, from the watchdog's thread."""

    def __init__(self, progress: StreamProgress, timeout: float, end: Callable[[float], None]) -> None:
        self.progress = progress
        self.timeout = timeout
        self.end = end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        interval = min(1.0, self.timeout / 4)
        seen, since = -1, time.monotonic()
        while not self._stop.wait(interval):
            count, now = self.progress.count, time.monotonic()
            if count != seen or count % 2 == 1:
                seen, since = count, now
            elif now - since >= self.timeout:
                self.end(now - since)
                return


def end_stuck_coprocess(seconds: float) -> None:
    """The watchdog's end for a coprocess: one log line, then exit at once. The line is written from a
    thread of its own and waited for a second at most: the stuck thread may hold the log's lock (a write to a
    full stderr pipe)."""
    writer = threading.Thread(
        target=logger.error,
        args=(
            "no answer after %.1f s to PowerDNS's request: exiting, so that PowerDNS starts a new coprocess",
            seconds,
        ),
        daemon=True,
    )
    writer.start()
    writer.join(1.0)
    os._exit(3)


def serve_stream(
    respond: Responder,
    too_long: bytes,
    max_line: int,
    clock: StreamClock | None = None,
    pending: bytes = b"",
    infd: int = 0,
    outfd: int = 1,
    ask: Quick | None = None,
    progress: StreamProgress | None = None,
) -> None:
    """Answer line by line until end of input: each answer is written whole before the next line is read.

    :param clock: updated after each write of an answer not from ``ask``. It tells how long PowerDNS
        has been waiting while nothing is loaded yet; an answer from ``ask`` means something was loaded.
    :param pending: input read already (by the handshake), answered first.
    :param ask: asked first with each read, whole (PowerDNS sends one request and waits for its answer):
        see :meth:`ResponseCache.asker`.
    :param progress: counted around each read, for a :class:`Watchdog`.
    """
    splitter = LineSplitter(max_line)
    clock = clock or StreamClock()
    progress = progress or StreamProgress()
    monotonic = time.monotonic
    read, write_answer = os.read, _write_answer
    while True:
        if pending:
            data, pending = pending, b""
        else:
            progress.count += 1
            try:
                data = read(infd, 65536)
            except InterruptedError:
                progress.count += 1
                continue
            progress.count += 1
            if not data:
                return
            if ask is not None and not splitter.partial:
                answer = ask(data)
                if answer is not None:
                    write_answer(outfd, answer, progress)
                    continue
        lines = splitter.feed(data)
        if not lines:
            continue
        if len(lines) == 1:
            line = lines[0]
            answer = too_long if line is None else respond(line)
        else:
            answer = b"".join(too_long if line is None else respond(line) for line in lines)
        write_answer(outfd, answer, progress)
        clock.last_write = monotonic()


#: A pipe's capacity: a longer answer (a zone listing) is written in pieces of this size.
_PIECE = 65536


def _write_answer(outfd: int, answer: bytes, progress: StreamProgress) -> None:
    """Write ``answer`` whole: in one call when it fits a pipe, else in pieces of a pipe's capacity (written
    whole, a zone listing would block in one call), each counted as progress (by two: the count stays even,
    answering), so that PowerDNS reading a large zone for longer than the watchdog's timeout is not taken for
    a stuck process."""
    written = os.write(outfd, answer) if len(answer) <= _PIECE else 0
    if written == len(answer):
        return
    view = memoryview(answer)[written:]
    while view:
        view = view[os.write(outfd, view[:_PIECE]) :]
        progress.count += 2


# epoll where there is one (Linux), else poll; both take the same event bits.
_IN, _OUT = select.POLLIN, select.POLLOUT


def _poller() -> tuple[object, float]:
    """A poller and the factor turning seconds into its timeout unit."""
    if hasattr(select, "epoll"):
        return select.epoll(), 1.0
    return select.poll(), 1000.0


class _Connection:
    __slots__ = ("ask", "out", "respond", "sock", "splitter")

    def __init__(self, sock: socket.socket, max_line: int, respond: Responder, ask: Quick | None) -> None:
        self.sock = sock
        self.splitter = LineSplitter(max_line)
        self.out = bytearray()
        self.respond = respond
        self.ask = ask


class SocketServer:
    """A unix stream socket speaking a line protocol to any number of clients, from one thread.

    PowerDNS opens one connection per backend instance and sends one request at a time on each; a single
    epoll loop answers them all without threads fighting over the interpreter lock (measured: a third
    less CPU per request than the selectors module, and less than a thread per connection, whose
    answers would also need a cache safe for several writers).
    """

    def __init__(
        self,
        path: str,
        session: Callable[[], tuple[Responder, Quick | None]],
        too_long: bytes,
        max_line: int,
        mode: int = 0o666,
    ) -> None:
        """:param session: makes the responder of each new connection, and what to ask first with each read,
        whole (:meth:`ResponseCache.asker`): the same every time for a protocol without state (remote), new
        ones where a connection has some (the pipe protocol's ABI version).
        """
        self.path = path
        self.session = session
        self.too_long = too_long
        self.max_line = max_line
        self.mode = mode
        self.connections = 0
        self._stop = threading.Event()
        self._poller, self._unit = _poller()
        self._conns: dict[int, _Connection] = {}
        self._listener: socket.socket | None = None

    def bind(self) -> None:
        """Create the socket (replacing a stale one left by a crash, never a live one or another file)."""
        path = Path(self.path)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                raise OSError(errno.EADDRINUSE, f"{path} is in use by another process")
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink()
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp_umask = os.umask(0o077)
        try:
            listener.bind(str(path))
        finally:
            os.umask(tmp_umask)
        os.chmod(path, self.mode)
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._poller.register(listener.fileno(), _IN)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Serve until ``stop()``; removes the socket file at the end."""
        assert self._listener is not None, "bind() first"
        listener = self._listener.fileno()
        poll = self._poller.poll  # type: ignore[attr-defined]
        timeout = 0.5 * self._unit
        conns = self._conns
        too_long = self.too_long
        stopping = self._stop.is_set
        try:
            while not stopping():
                for fd, events in poll(timeout):
                    conn = conns.get(fd)
                    if conn is None:
                        if fd == listener:
                            self._accept()
                        continue
                    if events & _OUT:
                        self._write(conn)
                        continue
                    # Readable, or hung up / failed: recv tells which. This is the hot path, kept inline.
                    try:
                        data = conn.sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self._close(conn)
                        continue
                    ask = conn.ask
                    if ask is not None and not conn.splitter.partial:
                        answer = ask(data)
                        if answer is not None:
                            self._send(conn, answer)
                            continue
                    lines = conn.splitter.feed(data)
                    if not lines:
                        continue
                    respond = conn.respond
                    if len(lines) == 1:
                        line = lines[0]
                        answer = too_long if line is None else respond(line)
                    else:
                        answer = b"".join(too_long if line is None else respond(line) for line in lines)
                    self._send(conn, answer)
        finally:
            for conn in list(conns.values()):
                self._close(conn)
            self._listener.close()
            self._poller.close()  # type: ignore[attr-defined]
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self.connections += 1
        self._conns[sock.fileno()] = _Connection(sock, self.max_line, *self.session())
        self._poller.register(sock.fileno(), _IN)  # type: ignore[attr-defined]
        logger.debug("connection %d opened", sock.fileno())

    def _close(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self._conns.pop(fd, None)
            try:
                self._poller.unregister(fd)  # type: ignore[attr-defined]
            except (KeyError, ValueError, OSError):
                pass
        conn.sock.close()

    def _send(self, conn: _Connection, answer: bytes) -> None:
        if conn.out:
            conn.out += answer
            return
        try:
            sent = conn.sock.send(answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(answer):
            # A large answer (a zone listing): finish it when the socket is writable again.
            conn.out += answer[sent:]
            self._poller.modify(conn.sock.fileno(), _OUT)  # type: ignore[attr-defined]

    def _write(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.out[:sent]
        if not conn.out:
            self._poller.modify(conn.sock.fileno(), _IN)  # type: ignore[attr-defined]
