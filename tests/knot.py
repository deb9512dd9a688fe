"""A real Knot DNS ``knotd`` for tests, configured as etc/knot/knot.conf.ddserver advises: a temp folder, a
free port on 127.0.0.1, a TSIG key allowed to update A, AAAA and TXT and to transfer, a journal.

``KnotServer`` answers the same calls as ``tests.named.NamedServer`` (query, ttl, soa, update, axfr), so
tests can run against either primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.exception
import pytest

from tests import support
from tests.named import KEY_ALGORITHM, KEY_NAME, NamedServer, make_secret


class KnotServer(NamedServer):
    """One ``knotd`` in the foreground in its own folder (queries and updates as for ``named``)."""

    def __init__(self, folder: Path, zones: tuple[str, ...] = ("dyn.example.org",)) -> None:
        self.binary = support.require_binary("knotd", "/usr/sbin/knotd")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.zones = zones
        self.key_name = KEY_NAME
        self.key_algorithm = KEY_ALGORITHM
        self.secret = make_secret(str(folder))
        self.host = "127.0.0.1"
        self.port = support.free_dns_port(self.host)
        self.process: support.Process | None = None
        self.conf = self.folder / "knot.conf"
        self._write()

    def _write(self) -> None:
        f = self.folder
        parts = [
            "server:",
            f'    rundir: "{f}"',
            f'    pidfile: "{f}/knot.pid"',
            f"    listen: {self.host}@{self.port}",
            "    background-workers: 1",
            "    udp-workers: 1",
            "    tcp-workers: 1",
            "database:",
            f'    storage: "{f}"',
            "log:",
            "  - target: stderr",
            "    any: info",
            "key:",
            f"  - id: {self.key_name}",
            f"    algorithm: {self.key_algorithm}",
            f"    secret: {self.secret}",
            "acl:",
            "  - id: ddserver-update",
            f"    key: {self.key_name}",
            "    action: [update, transfer]",
            "    update-type: [A, AAAA, TXT]",
            "zone:",
        ]
        for zone in self.zones:
            zone_file = f / f"{zone}.zone"
            if not zone_file.exists():
                zone_file.write_text(
                    f"$TTL 60\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 60\n"
                    f"@ IN NS ns1.{zone}.\nns1 IN A 192.0.2.53\n"
                )
            parts += [
                f"  - domain: {zone}",
                f'    storage: "{f}"',
                f'    file: "{zone_file.name}"',
                "    acl: [ddserver-update]",
                "    zonefile-sync: 60",
                "    journal-content: all",
                "    serial-policy: increment",
            ]
        self.conf.write_text("\n".join(parts) + "\n")

    def start(self) -> None:
        if self.process is not None and self.process.alive():
            return
        self.process = support.Process([self.binary, "-c", str(self.conf)], log=self.folder / "knotd.log")
        self.process.wait_for(self._answers, timeout=30, what=f"knotd to serve on {self.server}")

    def _answers(self) -> bool:
        try:
            self.soa(self.zones[0])
            return True
        except (OSError, EOFError, IndexError, dns.exception.DNSException):
            return False


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[KnotServer]:
    """A started ``knotd`` serving dyn.example.org, stopped whatever happens."""
    server = KnotServer(tmp_path / "knot")
    try:
        server.start()
        yield server
    finally:
        server.stop()
