"""Command line of ``ddserver-recursor``."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddserver-recursor", description="PowerDNS backend for ddserver's zones.")
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pipe", action="store_true", help="speak the pipe backend protocol on stdin/stdout")
    mode.add_argument("--remote-pipe", action="store_true", help="speak the remote backend protocol on stdin/stdout")
    mode.add_argument("--remote-socket", metavar="PATH", help="serve the remote backend protocol on a unix socket")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("ddserver-recursor: not implemented yet", file=sys.stderr)
    return 1
