"""A real PowerDNS for tests: ``start_pdns`` runs pdns_server in a temp folder on a free port, with the pipe or
remote backend pointing at ddserver-recursor, and always stops it (and the recursor) again.

Usage::

    with start_pdns(tmp_path, config_file, mode="remote-socket", cache=True) as pdns:
        answer = pdns.query("home.dyn.example.org", "A")
        assert pdns.addresses("home.dyn.example.org") == ["192.0.2.1"]

``config_file`` is a ddserver configuration naming the database; the fixture points the recursor's cache
purge at this PowerDNS's control socket itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone

from tests import support

MODES = ("pipe", "remote-pipe", "remote-socket", "pipe-socket")


def pdns_binary() -> str:
    return support.require_binary("pdns_server", "/usr/sbin/pdns_server")


def require_backend(name: str) -> None:
    """Skip (fail under CI) when the Debian backend package is missing."""
    if not Path(f"/usr/lib/x86_64-linux-gnu/pdns/lib{name}backend.so").exists() and not list(
        Path("/usr/lib").glob(f"*/pdns/lib{name}backend.so")
    ):
        support.missing(f"PowerDNS {name} backend is not installed (pdns-backend-{name})")


class PdnsServer:
    """A running pdns_server (and, in remote-socket mode, the ddserver-recursor daemon it talks to)."""

    def __init__(self, folder: Path, port: int, process: support.Process, recursor: support.Process | None) -> None:
        self.folder = folder
        self.port = port
        self.process = process
        self.recursor = recursor
        self.host = "127.0.0.1"

    @property
    def socket_dir(self) -> Path:
        return self.folder

    @property
    def control_socket(self) -> Path:
        return self.folder / "pdns.controlsocket"

    def query(self, name: str, rdtype: str = "A", *, tcp: bool = False, timeout: float = 5.0) -> dns.message.Message:
        """Ask PowerDNS one question and return the whole answer message."""
        request = dns.message.make_query(name, rdtype)
        if tcp:
            return dns.query.tcp(request, self.host, port=self.port, timeout=timeout)
        # A real resolver retries a lost UDP answer; so do we, once (a busy machine may be slow to start
        # PowerDNS's coprocesses).
        try:
            return dns.query.udp(request, self.host, port=self.port, timeout=timeout)
        except dns.exception.Timeout:
            return dns.query.udp(request, self.host, port=self.port, timeout=timeout)

    def rcode(self, name: str, rdtype: str = "A") -> str:
        return dns.rcode.to_text(self.query(name, rdtype).rcode())

    def records(self, name: str, rdtype: str = "A") -> list[str]:
        """The answer section's data for ``name``/``rdtype`` as sorted texts."""
        answer = self.query(name, rdtype)
        found = []
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype) or rdtype == "ANY":
                found.extend(rdata.to_text() for rdata in rrset)
        return sorted(found)

    def addresses(self, name: str) -> list[str]:
        return self.records(name, "A") + self.records(name, "AAAA")

    def axfr(self, zone: str) -> dns.zone.Zone:
        # A pipe-mode AXFR starts a coprocess of its own, which loads the zone: slow on a busy machine.
        return dns.zone.from_xfr(dns.query.xfr(self.host, zone, port=self.port, timeout=30))

    def control(self, command: str) -> str:
        """One pdns_control command through the control socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.control_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def log(self) -> str:
        text = self.process.log()
        if self.recursor is not None:
            text += "\n--- recursor ---\n" + self.recursor.log()
        return text

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            if self.recursor is not None:
                self.recursor.stop()

    def __enter__(self) -> PdnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pdns_conf(
    folder: Path,
    port: int,
    backend: str,
    *,
    cache: bool,
    cache_ttl: int = 60,
    extra: str = "",
    distributor_threads: int = 3,
    address: str = "127.0.0.1",
) -> str:
    """The pdns.conf text for a test server on ``address``; ``backend`` holds the launch= lines."""
    ttl = cache_ttl if cache else 0
    return (
        f"local-address={address}\nlocal-port={port}\nsocket-dir={folder}\nguardian=no\ndaemon=no\n"
        "disable-syslog=yes\nloglevel=6\nlog-dns-queries=no\n"
        f"cache-ttl={ttl}\nquery-cache-ttl={ttl}\nnegquery-cache-ttl={ttl}\n"
        f"distributor-threads={distributor_threads}\nallow-axfr-ips=127.0.0.0/8,::1\ndisable-axfr=no\n"
        "webserver=no\napi=no\nsecurity-poll-suffix=\n" + backend + extra
    )


def pipe_backend(command: str, abi: int, timeout: int = 0) -> str:
    """pdns.conf lines for the pipe backend (it has no zone list, so PowerDNS's zone cache must be off);
    ``timeout`` is pipe-timeout (0, as etc/pdns/pdns-pipe.conf has it: the coprocess guards itself)."""
    return (
        f"launch=pipe\npipe-command={command}\npipe-abi-version={abi}\npipe-timeout={timeout}\n"
        "zone-cache-refresh-interval=0\n"
    )


def start_pdns(
    folder: Path,
    config_file: Path,
    mode: str = "remote-socket",
    *,
    abi: int = 5,
    pipe_timeout: int = 0,
    cache: bool = False,
    cache_ttl: int = 60,
    purge: str = "socket",
    extra: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    distributor_threads: int = 3,
) -> PdnsServer:
    """Start pdns_server with ddserver-recursor as its backend; stop it with ``.stop()`` or ``with``.

    :param folder: a private folder (pdns.conf, socket-dir, logs); a test's ``tmp_path`` or a sub-folder.
    :param config_file: the ddserver configuration the recursor reads (the database, at least).
    :param mode: ``pipe``, ``remote-pipe``, ``remote-socket`` or ``pipe-socket``.
    :param abi: pipe ABI version (the pipe modes only).
    :param pipe_timeout: PowerDNS's pipe-timeout in milliseconds (pipe mode).
    :param cache: turn PowerDNS's packet and query caches on (``cache_ttl`` seconds) or off.
    :param purge: the recursor's purge method (``socket`` is aimed at this server's control socket).
    :param extra: more pdns.conf lines.
    :param env: more environment for the recursor (``DDSERVER_...`` overrides, say).
    :param distributor_threads: PowerDNS's threads, each with its own backend connection (or coprocess).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    pdns_binary()  # missing: a clear skip (a failure under CI) before anything starts
    require_backend("pipe" if mode.startswith("pipe") else "remote")
    folder.mkdir(parents=True, exist_ok=True)
    recursor_bin = support.console_script("ddserver-recursor")
    config_file = Path(config_file).resolve()
    if " " in str(config_file) or " " in recursor_bin:
        raise ValueError("PowerDNS splits pipe-command on spaces: use paths without spaces")
    environment = dict(os.environ)
    environment.update(
        {
            "DDSERVER_RECURSOR_PURGE": purge,
            "DDSERVER_RECURSOR_CONTROL_SOCKET": str(folder / "pdns.controlsocket"),
            # Pipe coprocesses start from a snapshot: one per test, never another test's.
            "DDSERVER_RECURSOR_SNAPSHOT_DIR": str(folder / "snapshots"),
        }
    )
    environment.update(env or {})
    recursor: support.Process | None = None
    if mode == "pipe":
        backend = pipe_backend(f"{recursor_bin} --config {config_file} --pipe", abi, pipe_timeout)
    elif mode == "remote-pipe":
        backend = (
            f"launch=remote\nremote-connection-string=pipe:command={recursor_bin} --config {config_file} "
            "--remote-pipe,timeout=5000\n"
        )
    else:
        sock = folder / "recursor.sock"
        recursor = support.Process(
            [recursor_bin, "--config", str(config_file), f"--{mode}", str(sock)],
            log=folder / "recursor.log",
            env=environment,
        )
        recursor.wait_for(sock.exists, timeout, "ddserver-recursor to open its socket")
        if mode == "pipe-socket":
            # PowerDNS's pipe backend connects to pipe-command when it names a unix socket.
            backend = pipe_backend(str(sock), abi)
        else:
            backend = f"launch=remote\nremote-connection-string=unix:path={sock},timeout=5000\n"
    server: PdnsServer | None = None
    try:
        server = launch_pdns(
            folder,
            backend,
            env=environment,
            recursor=recursor,
            timeout=timeout,
            cache=cache,
            cache_ttl=cache_ttl,
            extra=extra,
            distributor_threads=distributor_threads,
        )
        if mode in ("pipe", "remote-pipe"):
            # The first coprocess has the index snapshot built; until then its queries fail.
            server.process.wait_for(
                lambda: list((folder / "snapshots").glob("*.snapshot")), timeout, "the index snapshot"
            )
    except BaseException:
        if server is not None:
            server.stop()  # and the recursor with it
        elif recursor is not None:
            recursor.stop()
        raise
    return server


def launch_pdns(
    folder: Path,
    backend: str,
    *,
    env: dict[str, str] | None = None,
    recursor: support.Process | None = None,
    timeout: float = 30.0,
    cache: bool = False,
    cache_ttl: int = 60,
    extra: str = "",
    distributor_threads: int = 3,
) -> PdnsServer:
    """pdns_server in ``folder`` with the ``backend`` lines, on a free port, once it answers its control socket
    and listens; started again on another port when the one picked was taken before PowerDNS could bind it
    (by another test's server or client). ``recursor`` is stopped with it."""
    for attempt in range(3):
        port = support.free_dns_port()
        conf = pdns_conf(
            folder,
            port,
            backend,
            cache=cache,
            cache_ttl=cache_ttl,
            extra=extra,
            distributor_threads=distributor_threads,
        )
        (folder / "pdns.conf").write_text(conf)
        process = support.Process(
            [pdns_binary(), f"--config-dir={folder}"], log=folder / "pdns.log", env=env, stdin=subprocess.DEVNULL
        )
        server = PdnsServer(folder, port, process, recursor)
        try:
            # Through the process, so that a pdns_server that exited is reported at once, with its log.
            process.wait_for(lambda s=server: s.control("version").strip(), timeout, "pdns_server's control socket")
            process.wait_port("127.0.0.1", port, timeout)
            return server
        except BaseException as exc:
            process.stop()
            if attempt == 2 or not isinstance(exc, RuntimeError) or "in use" not in str(exc):
                raise
    raise AssertionError("not reached")
