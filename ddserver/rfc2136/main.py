"""Command line of ``ddserver-rfc2136``: follow the change feed as a daemon, or apply what is pending and exit."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from ddserver import exposition
from ddserver.config import load_config, parse_listen
from ddserver.console import EXIT_ERROR, run, setup_logging
from ddserver.db import Database
from ddserver.db import migrate as migrations
from ddserver.errors import DDServerError

if TYPE_CHECKING:
    from ddserver.rfc2136.worker import Worker

logger = logging.getLogger("ddserver.rfc2136")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddserver-rfc2136",
        description="Keep BIND, Knot or any RFC 2136 primary in step with ddserver's zones (UPDATE with TSIG).",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (else $DDSERVER_CONFIG, /etc/ddserver/ddserver.conf, built-in defaults)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="apply every pending change once and exit (exit status 1 if a zone failed)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        try:
            import dns.update  # noqa: F401 - the one dependency beyond the core
        except ImportError:
            from ddserver.errors import MissingDependency

            raise MissingDependency("dnspython is not installed: pip install 'ddserver[rfc2136]'")
        from ddserver.rfc2136.worker import Worker

        config = load_config(args.config)
        setup_logging(config, "ddserver-rfc2136")
        db = Database.from_config(config)
        migrations.check_schema(db)
        worker = Worker(db, config)
        if args.once:
            return _once(worker)

        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("stopping (signal %d)", signum)
            worker.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if config.rfc2136.metrics:
            host, port = parse_listen(config.rfc2136.metrics)
            try:
                exposition.serve(host, port, worker.metrics.render)
            except OSError as exc:
                raise DDServerError(f"[rfc2136] metrics = {config.rfc2136.metrics}: {exc.strerror or exc}")
            logger.info("metrics on http://%s/metrics", config.rfc2136.metrics)
        logger.info("following the change feed every %g s as %s", config.rfc2136.poll_interval, worker.holder)
        worker.run_forever()
        return 0

    return run(body, "ddserver-rfc2136")


def _once(worker: Worker) -> int:
    """Passes until nothing more is pending (a failing zone is tried once, then waits for its backoff)."""
    try:
        result = worker.run_pass(force=True)
        for _ in range(1000):
            more = worker.run_pass()
            if not more.pushed and not more.synced:
                break
            for zone, count in more.pushed.items():
                result.pushed[zone] = result.pushed.get(zone, 0) + count
            result.synced.update(more.synced)
            result.errors.update(more.errors)
    finally:
        worker.release_all()
    for zone, count in sorted(result.synced.items()):
        print(f"{zone}: full comparison fixed {count} names")
    for zone, count in sorted(result.pushed.items()):
        print(f"{zone}: {count} names pushed")
    for zone in result.busy:
        print(f"{zone}: another worker holds it; skipped")
    for _zone, message in sorted(result.errors.items()):
        print(f"ddserver-rfc2136: {message}", file=sys.stderr)
    return EXIT_ERROR if result.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
