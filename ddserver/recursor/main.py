"""Command line of ``ddserver-recursor``: parse the arguments, answer PowerDNS's handshake at once in the
coprocess modes, then run the daemon (ddserver.recursor.daemon).

PowerDNS gives a new coprocess ``pipe-timeout`` (2 s by default) to answer its handshake and stops for good when one
started with it does not (``Distributor caught fatal exception``). Importing the daemon takes a good part of
a second on a busy machine, so the handshake is answered first, with only the small protocol modules loaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NamedTuple


class Handshake(NamedTuple):
    """What the command line read from PowerDNS before the daemon started."""

    #: Bytes read from standard input and not answered yet: the daemon answers them first.
    pending: bytes = b""
    #: The pipe ABI agreed on (pipe mode, when the handshake was answered).
    abi: int | None = None
    #: When the last answer was written (monotonic clock): PowerDNS's timeout for its next line runs from
    #: no earlier than that.
    at: float = 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddserver-recursor", description="PowerDNS backend for ddserver's zones.")
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pipe", action="store_true", help="speak the pipe backend protocol on stdin/stdout")
    mode.add_argument("--remote-pipe", action="store_true", help="speak the remote backend protocol on stdin/stdout")
    mode.add_argument("--remote-socket", metavar="PATH", help="serve the remote backend protocol on a unix socket")
    mode.add_argument(
        "--pipe-socket",
        metavar="PATH",
        help="serve the pipe backend protocol on a unix socket (PowerDNS's pipe-command set to PATH)",
    )
    parser.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics here (overrides config)")
    # Internal: the detached process that writes the snapshot pipe coprocesses start from.
    mode.add_argument("--write-snapshot", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--rediscover", action="store_true", help=argparse.SUPPRESS)
    return parser


def answer_handshake(remote_mode: bool, infd: int = 0, outfd: int = 1) -> Handshake:
    """Read PowerDNS's first line and answer it when it is the handshake (pipe ``HELO`` with a known ABI,
    or the remote ``initialize``); anything else is left to the daemon, which answers it as always."""
    from ddserver.dns import pipe, remote

    limit = remote.MAX_MESSAGE if remote_mode else pipe.MAX_LINE
    data = b""
    while b"\n" not in data and len(data) <= limit:
        try:
            chunk = os.read(infd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    line, newline, rest = data.partition(b"\n")
    if not newline or len(line) > limit:
        return Handshake(data, None, time.monotonic())
    line = line.rstrip(b"\r")
    abi = None
    if remote_mode:
        if not _is_initialize(line):
            return Handshake(data, None, time.monotonic())
        answer = remote.RemoteHandler(lambda: None).handle(line).encode() + b"\n"
    else:
        fields = line.split(b"\t")
        if len(fields) != 2 or fields[0] != b"HELO" or fields[1] not in {b"%d" % v for v in pipe.ABI_VERSIONS}:
            return Handshake(data, None, time.monotonic())  # not a good HELO: the daemon answers and logs it
        session = pipe.PipeSession(lambda: None)
        answer = session.handle(line.decode("latin-1")).encode("latin-1", "replace")
        abi = session.abi
    view = memoryview(answer)
    while view:
        view = view[os.write(outfd, view) :]
    return Handshake(rest, abi, time.monotonic())


def _is_initialize(line: bytes) -> bool:
    import json

    try:
        request = json.loads(line)
    except ValueError:
        return False
    method = request.get("method") if isinstance(request, dict) else None
    return isinstance(method, str) and method.lower() == "initialize"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handshake = Handshake(at=time.monotonic())
    if args.pipe or args.remote_pipe:
        handshake = answer_handshake(remote_mode=args.remote_pipe)
    from ddserver.recursor import daemon

    return daemon.run(args, handshake)


if __name__ == "__main__":
    sys.exit(main())
