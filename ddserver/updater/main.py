"""Command line of ``ddserver-updater``: the dyndns2 API served by waitress."""

from __future__ import annotations

import argparse
import logging

from ddserver import console
from ddserver.config import parse_listen
from ddserver.db import Database, migrate
from ddserver.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddserver-updater", description="ddserver's dyndns2 update API.")
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default: [updater] listen)")
    return parser


def _serve(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = console.config_from(args.config)
    if args.listen:
        try:
            parse_listen(args.listen)
        except ValueError:
            raise ConfigError(f"--listen {args.listen!r}: expected HOST:PORT, such as 127.0.0.1:8081 or [::1]:8081")
        config = config.replace("updater", listen=args.listen)
    console.setup_logging(config, "ddserver-updater")
    host, port = parse_listen(config.updater.listen)
    db = Database.from_config(config)
    migrate.check_schema(db)

    import waitress

    from ddserver.updater.app import create_app

    app = create_app(config, db)
    # waitress warns about its task queue on every request that waits for a thread: under load that is a log
    # line per request, which costs more than the request. The latency histogram in /metrics tells the same.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.getLogger(__name__).info("listening on %s:%d with %d threads", host, port, config.updater.threads)
    try:
        waitress.serve(
            app,
            host=host,
            port=port,
            threads=config.updater.threads,
            ident="ddserver-updater",
            # Routers keep nothing open; a short idle timeout frees the channels of clients that vanish.
            channel_timeout=30,
            connection_limit=1000,
            # Forwarded headers are read by the app, from [http] trusted_proxies only.
            clear_untrusted_proxy_headers=False,
            _quiet=True,
        )
    finally:
        app.config["ddserver.updater"].close()
        db.close_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    return console.run(lambda: _serve(argv), "ddserver-updater")
