"""Serving Prometheus metrics in the text exposition format: a small HTTP server thread for the daemons
(recursor socket mode, RFC 2136 worker), and files for node-exporter's textfile collector (pipe coprocesses)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve(host: str, port: int, body: Callable[[], str]) -> Any:
    """Serve ``GET /metrics`` on a daemon thread; returns the server (``shutdown()`` stops it).

    :raises OSError: when the address cannot be bound.
    """
    import http.server  # only daemons that serve metrics import it: pipe coprocesses start faster without

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            data = body().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("metrics: " + format, *args)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def labelled(text: str, name: str, value: str) -> str:
    """Every sample of an exposition ``text`` with one more label (``process="1234"``), so that the files of
    several processes of one kind never hold the same series."""
    label = f'{name}="{value}"'
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            out.append(line)
            continue
        metric, _, sample = line.partition(" ")
        metric = f"{metric[:-1]},{label}}}" if metric.endswith("}") else f"{metric}{{{label}}}"
        out.append(f"{metric} {sample}")
    return "\n".join(out) + "\n"


class Textfile:
    """A process's metrics written to node-exporter's textfile collector folder every ``interval`` seconds as
    ``<prefix><pid>.prom`` (labelled ``process="<pid>"``), removed when the process stops; files of processes
    that ended without removing theirs are removed by the next one to start."""

    def __init__(self, folder: str, prefix: str, interval: float, body: Callable[[], str]) -> None:
        self.folder = folder
        self.prefix = prefix
        self.interval = interval
        self.body = body
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def write(self) -> None:
        try:
            write_textfile(self.folder, f"{self.prefix}{self.pid}", labelled(self.body(), "process", str(self.pid)))
            if self._failing:
                logger.info("writing metrics to %s works again", self.folder)
            self._failing = False
        except OSError as exc:
            if not self._failing:
                logger.warning("cannot write metrics to %s (retrying): %s", self.folder, exc)
            self._failing = True

    def start(self) -> Textfile:
        remove_stale_textfiles(self.folder, self.prefix, process_alive)
        self._thread = threading.Thread(target=self._run, name="metrics-textfile", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self.write()
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        try:
            (Path(self.folder) / f"{self.prefix}{self.pid}.prom").unlink()
        except OSError:
            pass


def write_textfile(folder: str | os.PathLike[str], name: str, body: str) -> Path:
    """Write ``body`` to ``folder/name.prom`` at once (a temporary file renamed over it), as node-exporter's
    textfile collector wants: it never reads half a file.

    :raises OSError: when the folder cannot be written.
    """
    path = Path(folder) / f"{name}.prom"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(body)
    os.replace(temporary, path)
    return path


def remove_stale_textfiles(folder: str | os.PathLike[str], prefix: str, alive: Callable[[int], bool]) -> int:
    """Remove ``prefix<pid>.prom`` files whose process is gone; returns how many."""
    removed = 0
    for path in Path(folder).glob(f"{prefix}*.prom"):
        pid = path.name[len(prefix) : -len(".prom")]
        if pid.isdigit() and not alive(int(pid)):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
