"""The recursor's start in PowerDNS's coprocess modes: the handshake is answered before the daemon is loaded,
and a query waiting for the first load FAILs before PowerDNS's timeout."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ddserver.recursor.daemon import FIRST_LOAD_WAIT, first_load_index
from ddserver.recursor.main import Handshake, answer_handshake
from ddserver.recursor.server import StreamClock


def handshake(data: bytes, remote_mode: bool = False) -> tuple[Handshake, bytes]:
    """Run answer_handshake on ``data`` (then end of input); returns it and what it wrote."""
    rin, win = os.pipe()
    rout, wout = os.pipe()
    try:
        os.write(win, data)
        os.close(win)
        result = answer_handshake(remote_mode, rin, wout)
        os.close(wout)
        written = b""
        while chunk := os.read(rout, 65536):
            written += chunk
        return result, written
    finally:
        for fd in (rin, rout, wout):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.mark.parametrize("abi", [1, 2, 3, 4, 5])
def test_pipe_helo_answered_and_the_rest_left_for_the_daemon(abi: int) -> None:
    query = b"Q\thome.dyn.example.org\tIN\tANY\t-1\t127.0.0.1\n"
    result, written = handshake(b"HELO\t%d\n" % abi + query)
    assert written == b"OK\tddserver recursor (ABI %d)\n" % abi
    assert result.abi == abi and result.pending == query and result.at > 0


@pytest.mark.parametrize("first", [b"HELO\t9\n", b"HELO\n", b"Q\tx\tIN\tA\t-1\t1.2.3.4\n", b"\xff" * 5000 + b"\n", b""])
def test_pipe_anything_else_is_not_answered_here(first: bytes) -> None:
    result, written = handshake(first)
    assert written == b"" and result.abi is None and result.pending == first


def test_remote_initialize_answered_other_messages_left() -> None:
    init = b'{"method": "initialize", "parameters": {"command": "/usr/bin/ddserver-recursor", "timeout": "2000"}}\n'
    result, written = handshake(init + b'{"method": "lookup"', remote_mode=True)
    assert written == b'{"result":true}\n' and result.pending == b'{"method": "lookup"'
    for other in (b'{"method": "lookup", "parameters": {}}\n', b"not json\n", b"[1]\n"):
        result, written = handshake(other, remote_mode=True)
        assert written == b"" and result.pending == other


class NotLoaded:
    """A follower that has not loaded anything yet."""

    def __init__(self) -> None:
        self.loaded = threading.Event()
        self.index = None
        self.waits: list[float] = []

    def wait_index(self, timeout: float) -> None:
        self.waits.append(timeout)
        return None


def test_first_query_fails_before_powerdns_gives_up() -> None:
    follower = NotLoaded()
    ago = FIRST_LOAD_WAIT * 0.6
    clock = StreamClock(time.monotonic() - ago)  # the handshake was answered a while ago (a slow start)
    index = first_load_index(follower, clock)  # type: ignore[arg-type]
    assert index() is None
    assert 0 < follower.waits[-1] <= FIRST_LOAD_WAIT - ago + 0.05  # PowerDNS has been waiting since then
    clock.last_write = time.monotonic() - 5
    index()
    assert follower.waits[-1] == 0.0
    clock.last_write = time.monotonic()
    index()
    assert follower.waits[-1] > FIRST_LOAD_WAIT * 0.5
