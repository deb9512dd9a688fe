"""``ddserver-interface``: serve the web interface with waitress."""

from __future__ import annotations

import argparse
import logging
import sys

from ddserver.config import parse_listen
from ddserver.console import config_from, run, setup_logging
from ddserver.errors import ConfigError

logger = logging.getLogger(__name__)


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default: from the config)")
    return parser


def listen_address(value: str, key: str) -> tuple[str, int]:
    try:
        return parse_listen(value)
    except ValueError:
        raise ConfigError(f"{key} {value!r}: expected HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080")


def serve(app: object, host: str, port: int, threads: int, name: str) -> None:
    """Serve a WSGI app with waitress until interrupted."""
    import waitress

    logger.info("%s listening on http://%s:%d/", name, f"[{host}]" if ":" in host else host, port)
    waitress.serve(app, host=host, port=port, threads=threads, ident=name, clear_untrusted_proxy_headers=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser("ddserver-interface", "Serve ddserver's web interface.").parse_args(argv)

    def body() -> int:
        config = config_from(args.config)
        setup_logging(config, "ddserver-interface")
        host, port = listen_address(
            args.listen or config.interface.listen, "--listen" if args.listen else "[interface] listen"
        )
        from ddserver.interface.app import create_app

        serve(create_app(config), host, port, config.interface.threads, "ddserver-interface")
        return 0

    return run(body, "ddserver-interface")


if __name__ == "__main__":
    sys.exit(main())
