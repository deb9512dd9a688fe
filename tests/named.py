"""A real BIND 9 ``named`` for tests: a temp folder, a free port on 127.0.0.1, a TSIG key, dynamic zones.

``NamedServer`` may be stopped and started again on the same port (to prove that nothing is lost while the
nameserver is down); the ``named`` fixture always stops it. Use ``dig``-like queries through ``query``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import dns.update
import dns.zone
import pytest

from tests import support

KEY_NAME = "ddserver-key"
KEY_ALGORITHM = "hmac-sha256"


def make_secret(seed: str) -> str:
    """A deterministic base64 TSIG secret of 32 bytes (tests need no randomness here)."""
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


class NamedServer:
    """One ``named -g`` in its own folder, serving dynamic zones that the key may update and transfer."""

    #: The server program, and where Debian installs it.
    program = ("named", "/usr/sbin/named")
    conf_name = "named.conf"

    def __init__(
        self,
        folder: Path,
        zones: tuple[str, ...] = ("dyn.example.org",),
        *,
        key_name: str = KEY_NAME,
        key_algorithm: str = KEY_ALGORITHM,
        secret: str | None = None,
    ) -> None:
        self.binary = support.require_binary(*self.program)
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.zones = zones
        self.key_name = key_name
        self.key_algorithm = key_algorithm
        self.secret = secret or make_secret(str(folder))
        self.host = "127.0.0.1"
        self.port = support.free_dns_port(self.host)
        self.process: support.Process | None = None
        self.conf = self.folder / self.conf_name
        self._write()

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def _write(self) -> None:
        f = self.folder
        key_file = f / "ddserver.key"
        key_file.write_text(
            f'key "{self.key_name}" {{\n    algorithm {self.key_algorithm};\n    secret "{self.secret}";\n}};\n'
        )
        (f / "secret").write_text(self.secret + "\n")
        parts = [
            "options {",
            f'    directory "{f}";',
            f'    pid-file "{f}/named.pid";',
            f'    session-keyfile "{f}/session.key";',
            f'    managed-keys-directory "{f}";',
            f"    listen-on port {self.port} {{ {self.host}; }};",
            "    listen-on-v6 { none; };",
            "    recursion no;",
            "    dnssec-validation no;",
            "    notify no;",
            "    allow-query { any; };",
            "};",
            "controls { };",
            f'include "{key_file}";',
        ]
        for zone in self.zones:
            zone_file = self.zone_file(zone)
            parts += [
                f'zone "{zone}" {{',
                "    type primary;",
                f'    file "{zone_file}";',
                f"    update-policy {{ grant {self.key_name} zonesub ANY; }};",
                f"    allow-transfer {{ key {self.key_name}; }};",
                "};",
            ]
        self.conf.write_text("\n".join(parts) + "\n")

    def zone_file(self, zone: str) -> Path:
        """The zone's file, written with a starting SOA, NS and ns1 A unless it is there (a restart keeps it)."""
        path = self.folder / f"{zone}.zone"
        if not path.exists():
            path.write_text(
                f"$TTL 60\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 60\n"
                f"@ IN NS ns1.{zone}.\nns1 IN A 192.0.2.53\n"
            )
        return path

    def argv(self) -> list[str]:
        # -g: foreground, log to stderr; -n 1: one worker thread (the machine is shared); -4: IPv4 only.
        return [self.binary, "-g", "-4", "-n", "1", "-c", str(self.conf)]

    def start(self) -> None:
        if self.process is not None and self.process.alive():
            return
        name = self.program[0]
        self.process = support.Process(self.argv(), log=self.folder / f"{name}.log")
        self.process.wait_for(self._answers, timeout=30, what=f"{name} to serve on {self.server}")

    def _answers(self) -> bool:
        try:
            self.soa(self.zones[0])
            return True
        except (OSError, EOFError, IndexError, dns.exception.DNSException):
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def log(self) -> str:
        return self.process.log() if self.process else ""

    # -- talking to it directly (as dig would, or as someone changing the zone behind ddserver's back)

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.key_name, self.secret, dns.name.from_text(self.key_algorithm))

    def query(self, name: str, rdtype: str = "A") -> list[str]:
        """The records of ``name`` as sorted presentation text ([] for NXDOMAIN or NODATA)."""
        response = dns.query.udp(dns.message.make_query(name, rdtype), self.host, timeout=3, port=self.port)
        found = []
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                found += [rdata.to_text() for rdata in rrset]
        return sorted(found)

    def ttl(self, name: str, rdtype: str = "A") -> int | None:
        response = dns.query.udp(dns.message.make_query(name, rdtype), self.host, timeout=3, port=self.port)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                return int(rrset.ttl)
        return None

    def soa(self, zone: str) -> int:
        response = dns.query.udp(dns.message.make_query(zone, "SOA"), self.host, timeout=1, port=self.port)
        return int(response.answer[0][0].serial)

    def update(self, zone: str, build: object) -> None:
        """Change the zone directly (``build(update)`` fills the message), as an outside party would."""
        update = dns.update.UpdateMessage(zone, keyring=self.key())
        build(update)  # type: ignore[operator]
        response = dns.query.tcp(update, self.host, timeout=5, port=self.port)
        assert response.rcode() == 0, response

    def axfr(self, zone: str) -> dns.zone.Zone:
        return dns.zone.from_xfr(dns.query.xfr(self.host, zone, port=self.port, keyring=self.key(), lifetime=10))


@contextlib.contextmanager
def started(server: NamedServer) -> Iterator[NamedServer]:
    """``server`` started, and stopped whatever happens."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def named(tmp_path: Path) -> Iterator[NamedServer]:
    """A started ``named`` serving dyn.example.org, stopped whatever happens."""
    with started(NamedServer(tmp_path / "named")) as server:
        yield server


#: The service's nameservers in the tests of users' own zones (``[zones] nameservers``).
SERVICE_NS = ("ns1.example.org", "ns2.example.org")


def parent_server(folder: Path, delegations: dict[str, tuple[str, ...]]) -> NamedServer:
    """A ``named`` acting as the parent zone ``example.com`` (not started), delegating each child label of
    ``delegations`` (``{"dyn": SERVICE_NS}``) to the NS names given; change it later with ``update``."""
    server = NamedServer(folder, zones=("example.com",))
    lines = [
        "$TTL 60",
        "@ IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 604800 60",
        "@ IN NS ns.example.com.",
        "ns IN A 127.0.0.1",
    ]
    for label, names in delegations.items():
        lines += [f"{label} IN NS {name}." for name in names]
    server.zone_file("example.com").write_text("\n".join(lines) + "\n")
    return server


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[NamedServer]:
    """BIND as the parent ``example.com``: ``dyn`` delegated to the service, ``other`` elsewhere, nothing else."""
    server = parent_server(tmp_path / "parent", {"dyn": SERVICE_NS, "other": ("ns.elsewhere.example.net",)})
    with started(server) as running:
        yield running


def set_delegation(server: NamedServer, child: str, names: tuple[str, ...]) -> None:
    """Replace the NS records of ``child`` (a name below example.com) in the parent (none: no delegation)."""

    def build(update: dns.update.UpdateMessage) -> None:
        update.delete(child + ".", "NS")
        for name in names:
            update.add(child + ".", 60, "NS", name + ".")

    server.update("example.com", build)


class SecondaryServer(NamedServer):
    """``named`` as a secondary of ``zones``: it transfers them from ``primary`` (HOST:PORT, set before
    :meth:`start`) with the TSIG key, and takes NOTIFY from it."""

    def __init__(self, folder: Path, zones: tuple[str, ...], **kwargs: object) -> None:
        self.primary = ""
        super().__init__(folder, zones, **kwargs)  # type: ignore[arg-type]

    def _write(self) -> None:
        super()._write()
        if not self.primary:
            return
        host, port = self.primary.rsplit(":", 1)
        text = self.conf.read_text()
        text = text[: text.index('zone "')] if 'zone "' in text else text
        for zone in self.zones:
            text += (
                f'zone "{zone}" {{\n    type secondary;\n    file "{self.folder / (zone + ".secondary")}";\n'
                f"    primaries {{ {host} port {port} key {self.key_name}; }};\n"
                f"    allow-notify {{ {host}; }};\n}};\n"
            )
        self.conf.write_text(text)

    def zone_file(self, zone: str) -> Path:
        return self.folder / f"{zone}.unused"

    def start(self) -> None:
        if not self.primary:
            raise ValueError("set the primary (HOST:PORT) first")
        self._write()
        super().start()
