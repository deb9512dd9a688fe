"""``ddserver-bundle``: the web interface and the dyndns2 updater in one WSGI application, for small sites.

Requests go to the interface when its router knows the path, to the updater when its router does
(``/nic/update``, ``/nic/ip`` and the other update paths), and to the interface's 404 page otherwise. The quick start (``ddserver run``) serves this with a private PowerDNS.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import bottle

from ddserver.config import Config
from ddserver.console import config_from, run, setup_logging
from ddserver.db import Database

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load_updater(config: Config, db: Database) -> bottle.Bottle | None:
    """The updater app, or None while ``ddserver.updater.app`` is not installed."""
    try:
        module = importlib.import_module("ddserver.updater.app")
    except ImportError as exc:
        if exc.name not in ("ddserver.updater.app", "ddserver.updater"):
            raise
        logger.warning("the updater is not installed: serving the web interface only")
        return None
    return module.create_app(config, db)  # type: ignore[no-any-return]


def start_relay(config: Config, db: Database) -> Any:
    """The updater's relay worker (``ddserver.updater.relay``), started; None when it is off or not installed."""
    try:
        module = importlib.import_module("ddserver.updater.relay")
    except ImportError as exc:
        if exc.name not in ("ddserver.updater.relay", "ddserver.updater"):
            raise
        return None
    return module.start(config, db)


class Bundle:
    """A WSGI app that hands each request to the updater when it owns the path, else to the interface."""

    def __init__(self, interface: bottle.Bottle, updater: bottle.Bottle | None) -> None:
        self.interface = interface
        self.updater = updater

    def owner(self, environ: dict[str, Any]) -> bottle.Bottle:
        """The interface for its own paths (``/`` included), the updater for the paths it knows, else the
        interface (for its 404 page)."""
        if self.updater is None:
            return self.interface
        for app in (self.interface, self.updater):
            try:
                app.router.match(environ)
            except bottle.HTTPError:
                continue  # 404 or 405 there
            return app
        return self.interface

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics" and self.updater is not None:
            return self.metrics(environ, start_response)
        return self.owner(environ)(environ, start_response)

    def metrics(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``/metrics`` of both: the interface's page, then the updater's (each as its own settings allow)."""
        answers = []
        for app in (self.interface, self.updater):
            assert app is not None
            seen: dict[str, Any] = {}

            def capture(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None, seen: dict[str, Any] = seen
            ) -> None:
                seen["status"], seen["headers"] = status, headers

            chunks = app(dict(environ), capture)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            answers.append((seen["status"], seen["headers"], body))
        served = [answer for answer in answers if answer[0].startswith("200")]
        status, headers, _ = served[0] if served else answers[0]
        body = b"".join(answer[2] for answer in served) if served else answers[0][2]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def create_bundle(config: Config, db: Database | None = None) -> Bundle:
    """Build the bundle; both apps share one database object (one connection per thread)."""
    from ddserver.interface.app import create_app

    db = db if db is not None else Database.from_config(config, serving=True)
    return Bundle(create_app(config, db), load_updater(config, db))


def serve_quickstart(config: Config, host: str, port: int, dns_port: int | None, data_dir: Path) -> int:
    """Serve the bundle with waitress until Ctrl-C; with ``dns_port``, run a private PowerDNS beside it.

    :returns: the exit code.
    """
    from ddserver.interface.main import serve

    pdns: Any = None
    relays: Any = None
    if dns_port is not None:
        pdns = _start_pdns(config, dns_port, data_dir)
    stop = threading.Event()

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        print(f"serving the web interface and updater on http://{host if ':' not in host else f'[{host}]'}:{port}/")
        print("press Ctrl-C to stop")
        db = Database.from_config(config, serving=True)
        relays = start_relay(config, db)
        serve(create_bundle(config, db), host, port, config.interface.threads, "ddserver-bundle")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if relays is not None:
            relays.close()
        signal.signal(signal.SIGTERM, previous)
        if pdns is not None:
            _stop_pdns(pdns)
    return 0


def _start_pdns(config: Config, dns_port: int, data_dir: Path) -> Any:
    """Start the recursor and a private pdns_server (``ddserver.recursor.private_pdns``), or None when that
    module is not installed; a failure to start is a ``DDServerError`` (one line, exit 1)."""
    try:
        from ddserver.recursor import private_pdns
    except ImportError:
        print("the private PowerDNS is not available in this version: serving HTTP only")
        return None
    handle = private_pdns.start_private_pdns(config, config.source, dns_port, data_dir)
    print(f"PowerDNS answers on 127.0.0.1:{dns_port} (dig @127.0.0.1 -p {dns_port} NAME)")
    return handle


def _stop_pdns(handle: Any) -> None:
    handle.stop()


def main(argv: list[str] | None = None) -> int:
    from ddserver.interface.main import build_parser, listen_address, serve

    args = build_parser("ddserver-bundle", "Serve ddserver's web interface and updater in one process.").parse_args(
        argv
    )

    def body() -> int:
        config = config_from(args.config)
        setup_logging(config, "ddserver-bundle")
        host, port = listen_address(
            args.listen or config.interface.listen, "--listen" if args.listen else "[interface] listen"
        )
        db = Database.from_config(config, serving=True)
        relays = start_relay(config, db)
        try:
            serve(create_bundle(config, db), host, port, config.interface.threads, "ddserver-bundle")
        finally:
            if relays is not None:
                relays.close()
        return 0

    return run(body, "ddserver-bundle")


if __name__ == "__main__":
    sys.exit(main())
