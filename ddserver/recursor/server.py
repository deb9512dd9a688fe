"""The recursor's I/O shells: a line loop on stdin/stdout (pipe and remote pipe) and a unix-socket server
that serves many PowerDNS connections from one thread and one shared index."""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

#: Turns one request line (without its newline) into the complete answer bytes.
Responder = Callable[[bytes], bytes]


class ResponseCache:
    """Remembers answers by the exact request bytes, valid while the index's generation is unchanged.

    PowerDNS asks the same questions over and over (the zone's SOA for every query, the name twice); a hit
    costs one dict read. Entries carry the generation they were computed at, so an answer computed while a
    change was being applied is never served after it.

    :param generation: the follower's current generation (bumped after each load and applied batch).
    :param record: the metrics hook ``(qtype, records)``; hits are counted like the lookups they replace.
    """

    def __init__(self, generation: Callable[[], int], limit: int = 100000) -> None:
        self.generation = generation
        self.limit = limit
        self.entries: dict[bytes, tuple[int, bytes, tuple[str, int] | None]] = {}
        self.hits = 0
        self._last: tuple[str, int] | None = None

    def note(self, qtype: str, records: int) -> None:
        """The handlers' ``on_query`` while wrapped: remembers what the answer counted as."""
        self._last = (qtype, records)

    def wrap(
        self,
        respond: Responder,
        record: Callable[[str, int], None] | None,
        cacheable: Callable[[bytes], bool],
        max_answer: int = 8192,
    ) -> Responder:
        """``respond`` with the cache in front, for the requests ``cacheable`` accepts (lookups only:
        a handshake or a command has effects or changing answers)."""
        entries, generation, limit = self.entries, self.generation, self.limit

        def cached(line: bytes) -> bytes:
            if not cacheable(line):
                return respond(line)
            gen = generation()
            hit = entries.get(line)
            if hit is not None and hit[0] == gen:
                self.hits += 1
                if record is not None and hit[2] is not None:
                    record(*hit[2])
                return hit[1]
            self._last = None
            answer = respond(line)
            counted = self._last
            if record is not None and counted is not None:
                record(*counted)
            if len(answer) <= max_answer:
                if len(entries) >= limit:
                    entries.clear()
                entries[line] = (gen, answer, counted)
            return answer

        return cached


class LineSplitter:
    """Splits a byte stream into lines, refusing lines longer than ``max_line`` (pure)."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """The complete lines in ``data`` so far; None stands for an oversized line (answer it with an error)."""
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
        return out


def serve_stream(respond: Responder, too_long: bytes, max_line: int, infd: int = 0, outfd: int = 1) -> None:
    """Answer line by line until end of input: each answer is written whole before the next line is read."""
    splitter = LineSplitter(max_line)
    while True:
        try:
            data = os.read(infd, 65536)
        except InterruptedError:
            continue
        if not data:
            return
        lines = splitter.feed(data)
        if not lines:
            continue
        answer = b"".join(too_long if line is None else respond(line) for line in lines)
        view = memoryview(answer)
        while view:
            written = os.write(outfd, view)
            view = view[written:]


class _Connection:
    __slots__ = ("out", "sock", "splitter")

    def __init__(self, sock: socket.socket, max_line: int) -> None:
        self.sock = sock
        self.splitter = LineSplitter(max_line)
        self.out = bytearray()


class SocketServer:
    """A unix stream socket speaking a line protocol to any number of clients, from one thread.

    PowerDNS opens one connection per backend instance and sends one request at a time on each; a single
    selector loop answers them all without threads fighting over the interpreter lock.
    """

    def __init__(self, path: str, respond: Responder, too_long: bytes, max_line: int, mode: int = 0o666) -> None:
        self.path = path
        self.respond = respond
        self.too_long = too_long
        self.max_line = max_line
        self.mode = mode
        self.connections = 0
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
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
        self._selector.register(listener, selectors.EVENT_READ, None)

    def stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Serve until ``stop()``; removes the socket file at the end."""
        assert self._listener is not None, "bind() first"
        try:
            while not self._stop.is_set():
                for key, events in self._selector.select(timeout=0.5):
                    if key.data is None:
                        self._accept()
                    elif events & selectors.EVENT_READ:
                        self._read(key.data)
                    else:
                        self._write(key.data)
        finally:
            for key in list(self._selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()
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
        self._selector.register(sock, selectors.EVENT_READ, _Connection(sock, self.max_line))
        logger.debug("connection %d opened", sock.fileno())

    def _close(self, conn: _Connection) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        lines = conn.splitter.feed(data)
        if not lines:
            return
        respond, too_long = self.respond, self.too_long
        answer = b"".join(too_long if line is None else respond(line) for line in lines)
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
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)

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
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
