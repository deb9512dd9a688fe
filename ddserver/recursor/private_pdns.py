"""A private PowerDNS for ``ddserver run``: pdns_server with the remote backend on a ddserver-recursor
unix socket, both in a folder of the quick start's data directory."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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
# Zones signed with 'ddserver zone dnssec' are signed by PowerDNS (docs/dnssec.md).
remote-dnssec=yes
# Caches on (PowerDNS defaults); the recursor purges changed names, so updates show at once.
cache-ttl=20
query-cache-ttl=20
negquery-cache-ttl=60
"""


#: prctl's option that gives a process a signal when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: How many lines of a failed server's log the error shows.
LOG_LINES = 12


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
        for name in PID_FILES:
            _forget(self.folder / name)


PID_FILES = ("recursor.pid", "pdns.pid")


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGTERM when the process that starts it dies, so a
    ``ddserver run`` ended by SIGKILL or a crash leaves no PowerDNS holding the DNS port."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None when it is
    gone: with the pid it tells a process apart from a later one that got the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _spawn(
    argv: list[str], log_path: Path, die_with_me: Callable[[], None], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child of ``ddserver run``: its output to ``log_path``, a process group of its own, and a
    parent-death signal so that it never outlives ``ddserver run``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_me,
        )


def _remember(path: Path, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    path.write_text(f"{process.pid} {_start_time(process.pid) or ''}\n")


def _forget(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def reap_leftovers(folder: Path, timeout: float = 10.0) -> list[int]:
    """End the processes an earlier run recorded in ``folder``'s pid files and still running (a run
    killed before it could stop them), and remove the files.

    :returns: the pids that were ended.
    """
    ended = []
    for name in PID_FILES:
        path = folder / name
        try:
            pid_text, _, started = path.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            _forget(path)
            continue
        if started and _start_time(pid) == started:
            ended.append(pid)
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.1)
            if _start_time(pid) == started:
                _signal_group(pid, signal.SIGKILL)
        _forget(path)
    return ended


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (the servers start in sessions of their own), else ``pid``."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(f"  {line}" for line in lines[-LOG_LINES:])


def _exited(what: str, process: subprocess.Popen, log: Path) -> DDServerError:  # type: ignore[type-arg]
    return DDServerError(f"{what} exited ({process.returncode}); the end of {log}:\n{_log_tail(log)}")


def _wait(check, process: subprocess.Popen, what: str, log: Path, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _exited(what, process, log)
        if check():
            return
        time.sleep(0.1)
    raise DDServerError(f"{what} did not start within {timeout:.0f} s; the end of {log}:\n{_log_tail(log)}")


def _port_taken(address: str, port: int) -> bool:
    """Whether another program holds ``port`` for UDP or TCP on ``address``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise
    return False


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
    # What a run that was killed may have left: its servers (they end with their parent, but one started by
    # an older version or in the instant before the parent died may not) and the recursor's socket, whose
    # file would look like a started recursor.
    reap_leftovers(folder)
    sock = folder / "recursor.sock"
    _forget(sock)
    if _port_taken(address, dns_port):
        raise DDServerError(
            f"cannot start PowerDNS: {address} port {dns_port} is taken by another program "
            f"(see: ss -lunp 'sport = :{dns_port}'); stop it or choose another port with --dns-port"
        )
    env = dict(os.environ)
    env.update(
        {
            "DDSERVER_DATABASE_URL": config.database.url,
            "DDSERVER_RECURSOR_PURGE": "socket",
            "DDSERVER_RECURSOR_CONTROL_SOCKET": str(folder / "pdns.controlsocket"),
            "DDSERVER_RECURSOR_SNAPSHOT_DIR": str(folder / "snapshots"),
            # The data key opens signed zones' private keys and transfer keys: the file the quick start
            # wrote, wherever the recursor runs from (a key set in the file or environment is passed on).
            "DDSERVER_AUTH_DATA_KEY_FILE": str(Path(config.auth.data_key_file).resolve()),
        }
    )
    argv = [sys.executable, "-m", "ddserver.recursor.main", "--remote-socket", str(sock)]
    if config_file_path is not None:
        argv[3:3] = ["--config", str(Path(config_file_path).resolve())]
    recursor_log = folder / "recursor.log"
    die_with_me = _die_with_parent(os.getpid())
    recursor = _spawn(argv, recursor_log, die_with_me, env)
    _remember(folder / "recursor.pid", recursor)
    try:
        _wait(sock.exists, recursor, "ddserver-recursor", recursor_log, timeout)
        (folder / "pdns.conf").write_text(PDNS_CONF.format(address=address, port=dns_port, folder=folder, socket=sock))
        pdns_log = folder / "pdns.log"
        pdns = _spawn([binary, f"--config-dir={folder}"], pdns_log, die_with_me)
        _remember(folder / "pdns.pid", pdns)
    except BaseException:
        os.killpg(recursor.pid, signal.SIGTERM)
        recursor.wait(10)
        _forget(folder / "recursor.pid")
        raise
    handle = PrivatePdns(folder, dns_port, address, pdns, recursor)
    try:
        # The port was free before: listening now, with our pdns_server alive, is ours.
        _wait(lambda: _listening(address, dns_port), pdns, "pdns_server", pdns_log, timeout)
        for process, what, log_path in ((pdns, "pdns_server", pdns_log), (recursor, "ddserver-recursor", recursor_log)):
            if process.poll() is not None:
                raise _exited(what, process, log_path)
    except BaseException:
        handle.stop()
        raise
    return handle
