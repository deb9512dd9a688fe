"""A TCP proxy of the tests' own that can go silent as a partitioned network does: it keeps every connection
open, accepts new ones, and forwards nothing in either direction until it is told to forward again."""

from __future__ import annotations

import concurrent.futures
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
#: Seconds a call through a silent link may take in tests that give the database short timeouts (a few
#: seconds): generous for a busy machine, far below the minutes of a hang.
BOUND = 15.0


class BlackholeProxy:
    """Forwards ``127.0.0.1:port`` to ``host:target_port`` until ``blackhole()``, and again after ``restore()``.

    Silent, it reads nothing: what either side sends waits in the kernel's buffers and arrives once the link
    is back, as TCP delivers what it retransmitted after a partition heals. A connection accepted while silent
    reaches the server only then. Nothing is ever closed but by a peer or ``close()``.
    """

    def __init__(self, host: str, target_port: int) -> None:
        self.target = (host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        #: Connections accepted so far (a client that opens a new one shows here).
        self.accepted = 0
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def blackhole(self) -> None:
        """Stop forwarding, closing nothing."""
        self._forwarding.clear()

    def restore(self) -> None:
        """Forward again, what was held back first."""
        self._forwarding.set()

    def url(self, url: str) -> str:
        """``url`` (mysql://user@host:port/db) with the proxy in place of the server."""
        parts = urllib.parse.urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def close(self) -> None:
        """Close every connection (clients still waiting see them end) and stop the threads."""
        self._stop.set()
        self._forwarding.set()
        with self._lock:
            sockets, self._sockets = [self._listener, *self._sockets], []
        for sock in sockets:
            _close(sock)
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> BlackholeProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- threads -----------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="blackhole-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _keep(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stop.is_set():
                _close(sock)
                return False
            self._sockets.append(sock)
            return True

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            if self._keep(client):
                self._spawn(self._connect, client)

    def _wait_forwarding(self) -> bool:
        """Wait until the link forwards; False once the proxy is closing."""
        while not self._forwarding.wait(0.05):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _connect(self, client: socket.socket) -> None:
        if not self._wait_forwarding():
            return
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        if not self._keep(server):
            return
        self._spawn(self._pump, client, server)
        self._pump(server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink`` while forwarding; at the end of either, close both."""
        try:
            while self._wait_forwarding():
                readable, _, _ = select.select([source], [], [], 0.05)
                if not readable or not self._forwarding.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):
            pass  # closed by the other pump or by close()
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Threads:
    """Single-thread pools: calls sent to one pool run on its thread, so share its database connection."""

    def __init__(self) -> None:
        self._pools: list[concurrent.futures.ThreadPoolExecutor] = []

    def new(self) -> concurrent.futures.ThreadPoolExecutor:
        self._pools.append(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        return self._pools[-1]

    def close(self) -> None:
        """Let go of the pools without waiting: a call still hanging ends when the proxy closes."""
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)


def finishes(pool: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the pool's thread, which must return or raise within ``BOUND`` seconds (printed)."""
    started = time.monotonic()
    future = pool.submit(fn, *args)
    try:
        return future.result(timeout=BOUND)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"{getattr(fn, '__name__', fn)}{args} still waiting after {BOUND} s")
    finally:
        print(f"{getattr(fn, '__name__', fn)}{args}: {time.monotonic() - started:.2f} s")
