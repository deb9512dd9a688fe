"""A real Knot DNS ``knotd`` for tests, configured as etc/knot/knot.conf.ddserver advises: a temp folder, a
free port on 127.0.0.1, a TSIG key allowed to update A, AAAA and TXT and to transfer, a journal.

``KnotServer`` is a ``tests.named.NamedServer`` with Knot's program and configuration, so tests run against
either primary with the same calls (query, ttl, soa, update, axfr).
"""

from __future__ import annotations

from tests.named import NamedServer


class KnotServer(NamedServer):
    """One ``knotd`` in the foreground in its own folder."""

    program = ("knotd", "/usr/sbin/knotd")
    conf_name = "knot.conf"

    def argv(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]

    def _write(self) -> None:
        f = self.folder
        (f / "secret").write_text(self.secret + "\n")
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
            parts += [
                f"  - domain: {zone}",
                f'    storage: "{f}"',
                f'    file: "{self.zone_file(zone).name}"',
                "    acl: [ddserver-update]",
                "    zonefile-sync: 60",
                "    journal-content: all",
                "    serial-policy: increment",
            ]
        self.conf.write_text("\n".join(parts) + "\n")
