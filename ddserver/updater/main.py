"""Command line of ``ddserver-updater``: the dyndns2 API served by waitress, gunicorn or granian."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ddserver import console
from ddserver.config import Config, parse_listen
from ddserver.db import Database, migrate
from ddserver.errors import ConfigError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddserver-updater", description="ddserver's dyndns2 update API.")
    parser.add_argument("--config", metavar="FILE", help="configuration file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default: [updater] listen)")
    return parser


def worker_app(config: Config, metrics_dir: str | None = None) -> Any:
    """The app of one worker process, with a database of its own (connections do not survive a fork)."""
    from ddserver.updater import relay
    from ddserver.updater.app import create_app

    db = Database.from_config(config, serving=True)
    app = create_app(config, db, metrics_dir=metrics_dir)
    # Each worker process runs its relay threads; the leases share the relays among them. They end with the
    # process (daemon threads); a lease left behind runs out.
    relay.start(config, db)
    console.settle_gc()
    return app


METRICS_PREFIX = "ddserver-updater-metrics-"


@contextlib.contextmanager
def _metrics_folder(parent: str | None = None) -> Iterator[str]:
    """A private folder where the workers of this server share their metrics, removed at the end.

    Its name carries the server's process id, so that the folders of servers that could not clean up (killed,
    or stopped before their workers) are removed by the next one to start.
    """
    parent = parent or tempfile.gettempdir()
    remove_stale_metrics(parent)
    folder = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-", dir=parent)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_metrics(parent: str) -> int:
    """Remove this user's metrics folders whose server process is gone; returns how many."""
    removed = 0
    for path in Path(parent).glob(f"{METRICS_PREFIX}*"):
        pid = path.name[len(METRICS_PREFIX) :].split("-", 1)[0]
        try:
            if not pid.isdigit() or path.lstat().st_uid != os.getuid() or _alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _serve_waitress(config: Config, host: str, port: int) -> None:
    import waitress

    from ddserver.updater import relay
    from ddserver.updater.app import create_app

    db = Database.from_config(config, serving=True)
    app = create_app(config, db)
    relays = relay.start(config, db)
    console.settle_gc()
    # waitress warns about its task queue on every request that waits for a thread: under load that is a log
    # line per request, which costs more than the request. The latency histogram in /metrics tells the same.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logger.info("listening on %s:%d with waitress, %d threads", host, port, config.updater.threads)
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
        if relays is not None:
            relays.close()
        app.config["ddserver.updater"].close()
        db.close_all()


def _serve_gunicorn(config: Config, host: str, port: int) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    class ThroughOurLogging(Logger):  # type: ignore[misc]
        """gunicorn's messages through ddserver's logging set-up ([logging] file, format), not its own."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                log.handlers.clear()
                log.propagate = True

    settings = config.updater
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            values = {
                "bind": [bind],
                "workers": settings.workers,
                # More than one thread makes gunicorn use its gthread worker: keep-alive connections, and
                # several requests at once in each worker, which the group commit needs to find anything to
                # group. threads = 1 gives the sync worker (one request at a time per process).
                "threads": settings.threads,
                "keepalive": 30,
                "timeout": 60,
                "graceful_timeout": 10,
                "proc_name": "ddserver-updater",
                # The app reads forwarded headers itself, from [http] trusted_proxies only.
                "forwarded_allow_ips": "",
                "accesslog": None,
                "loglevel": "warning",
                "logger_class": ThroughOurLogging,
            }
            for key, value in values.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Called in each worker after the fork (no preload): every worker makes its own app and database.
            return worker_app(config, metrics_dir)

    logger.info("listening on %s with gunicorn, %d workers of %d threads", bind, settings.workers, settings.threads)
    with _metrics_folder() as metrics_dir:
        Application(prog="ddserver-updater").run()


def _serve_granian(config: Config, host: str, port: int) -> None:
    import functools

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    settings = config.updater
    logger.info(
        "listening on %s:%d with granian, %d workers of %d threads", host, port, settings.workers, settings.threads
    )
    server = Granian(
        "ddserver.updater.main:worker_app",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=settings.workers,
        blocking_threads=settings.threads,
        # granian ends a thread idle this long; the next one opens a new database connection (tens of ms
        # when the database is busy) on the request that started it. The longest it allows.
        blocking_threads_idle_timeout=600,
        log_access=False,
        # granian's own messages go through ddserver's logging set-up (the journal or [logging] file).
        log_level=LogLevels.warning,
        log_dictconfig={"loggers": {"_granian": {"propagate": True}}},
        respawn_failed_workers=True,
    )
    # Each worker calls worker_app(config) itself, after the fork (or in a spawned process: both pickle).
    with _metrics_folder() as metrics_dir:
        server.serve(target_loader=functools.partial(worker_app, config, metrics_dir), wrap_loader=False)


SERVERS = {"waitress": _serve_waitress, "gunicorn": _serve_gunicorn, "granian": _serve_granian}


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
    try:
        migrate.check_schema(db)
    finally:
        db.close_all()
    kind = config.updater.server
    try:
        importlib.import_module(kind)
    except ImportError:
        raise ConfigError(
            f"config: [updater] server = {kind}: {kind} is not installed (pip install 'ddserver[updater]')"
        )
    SERVERS[kind](config, host, port)
    return 0


def main(argv: list[str] | None = None) -> int:
    return console.run(lambda: _serve(argv), "ddserver-updater")
