"""A private PowerDNS for ``ddserver run``: pdns_server with the remote backend on a ddserver-recursor
unix socket, both in a folder of the quick start's data directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ddserver.config import Config
from ddserver.errors import DDServerError

PDNS_CONF = """\
# Written by ddserver run: a private PowerDNS answering from ddserver-recursor (remote backend).
local-address={address}
local-port={port}
socket-dir={folder}
guardian=no
daemon=no
disable-syslog=yes
security-poll-suffix=
launch=remote
remote-connection-string=unix:path={socket},timeout=2000
# Caches on (PowerDNS defaults); the recursor purges changed names, so updates show at once.
cache-ttl=20
query-cache-ttl=20
negquery-cache-ttl=60
"""


def pdns_server_path() -> str | None:
    """Where pdns_server is, or None when PowerDNS is not installed."""
    return shutil.which("pdns_server") or shutil.which("pdns_server", path="/usr/sbin:/sbin")


class PrivatePdns:
    """The running pair; ``stop()`` ends both (it is safe to call twice)."""

    def __init__(self, folder: Path, port: int, address: str, pdns: subprocess.Popen, recursor: subprocess.Popen):
        self.folder = folder
        self.port = port
        self.address = address
        self.pdns = pdns
        self.recursor = recursor

    def alive(self) -> bool:
        return self.pdns.poll() is None and self.recursor.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        for process in (self.pdns, self.recursor):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in (self.pdns, self.recursor):
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _wait(check, process: subprocess.Popen, what: str, log: Path, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise DDServerError(f"{what} exited ({process.returncode}); see {log}:\n{tail}")
        if check():
            return
        time.sleep(0.1)
    raise DDServerError(f"{what} did not start within {timeout:.0f} s; see {log}")


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_private_pdns(
    config: Config,
    config_file_path: str | os.PathLike[str] | None,
    dns_port: int,
    data_dir: str | os.PathLike[str],
    address: str = "127.0.0.1",
    timeout: float = 60.0,
) -> PrivatePdns:
    """Start ddserver-recursor (remote-socket mode) and a pdns_server that asks it, and wait until both serve.

    :param config: the loaded configuration (its database is the one served).
    :param config_file_path: the file it came from, passed to the recursor (None: defaults plus the
        database URL from ``config``).
    :param dns_port: UDP and TCP port PowerDNS answers on.
    :param data_dir: the quick start's data folder; everything goes in its ``pdns`` sub-folder
        (pdns.conf, the control socket, the recursor's socket, logs ``pdns.log`` and ``recursor.log``).
    :param address: the address PowerDNS listens on.
    :returns: a handle; call ``.stop()`` to end both processes.
    :raises DDServerError: when pdns_server is not installed or either process fails to start.
    """
    binary = pdns_server_path()
    if binary is None:
        raise DDServerError("pdns_server is not installed (Debian: apt install pdns-server pdns-backend-remote)")
    folder = Path(data_dir).resolve() / "pdns"
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "recursor.sock"
    env = dict(os.environ)
    env.update(
        {
            "DDSERVER_DATABASE_URL": config.database.url,
            "DDSERVER_RECURSOR_PURGE": "socket",
            "DDSERVER_RECURSOR_CONTROL_SOCKET": str(folder / "pdns.controlsocket"),
            "DDSERVER_RECURSOR_SNAPSHOT_DIR": str(folder / "snapshots"),
        }
    )
    argv = [sys.executable, "-m", "ddserver.recursor.main", "--remote-socket", str(sock)]
    if config_file_path is not None:
        argv[3:3] = ["--config", str(Path(config_file_path).resolve())]
    recursor_log = folder / "recursor.log"
    with open(recursor_log, "ab") as log:
        recursor = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait(sock.exists, recursor, "ddserver-recursor", recursor_log, timeout)
        (folder / "pdns.conf").write_text(PDNS_CONF.format(address=address, port=dns_port, folder=folder, socket=sock))
        pdns_log = folder / "pdns.log"
        with open(pdns_log, "ab") as log:
            pdns = subprocess.Popen(
                [binary, f"--config-dir={folder}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except BaseException:
        os.killpg(recursor.pid, signal.SIGTERM)
        recursor.wait(10)
        raise
    handle = PrivatePdns(folder, dns_port, address, pdns, recursor)
    try:
        _wait(lambda: _listening(address, dns_port), pdns, "pdns_server", pdns_log, timeout)
    except BaseException:
        handle.stop()
        raise
    return handle
