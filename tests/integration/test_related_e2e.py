"""End to end: a main host's dyndns2 update and a prefix-only update move its related names, answered by a real
PowerDNS through ddserver-recursor (remote and pipe backends); ``dig`` asks for the related names' AAAA."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ddserver.db import Database
from ddserver.store import related
from tests import support
from tests.updater_support import ZONE, basic, make_site, running_updater

pdns = pytest.importorskip("tests.pdns")
HOME = f"home.{ZONE}"
NAS = f"nas.{HOME}"
TV = f"tv.{ZONE}"


def _get(url: str, login: str, secret: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def _dig(server: pdns.PdnsServer, name: str, rdtype: str) -> list[str]:
    """What ``dig`` gets from the PowerDNS under test."""
    result = subprocess.run(
        ["dig", "+short", "+norec", "+time=5", "+tries=3", "-p", str(server.port), "@127.0.0.1", name, rdtype],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A pipe backend starts its coprocesses on the first queries: a try may time out meanwhile (dig says so
    # on a ";;" line and tries again).
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(line for line in result.stdout.splitlines() if line and not line.startswith(";;"))


def _until(server: pdns.PdnsServer, name: str, rdtype: str, expected: list[str]) -> None:
    # Each pipe coprocess follows the feed on its own: one may answer the new data a moment after another.
    support.wait_until(
        lambda: _dig(server, name, rdtype) == expected, timeout=15, what=f"PowerDNS to answer {name} {rdtype}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["remote-socket", "pipe"])
def test_related_names_follow_updates_in_powerdns(db: Database, db_url: str, tmp_path: Path, mode: str) -> None:
    if shutil.which("dig") is None:
        support.missing("dig is not installed")
    site = make_site(db)
    related.add(db, site.home.id, NAS, "::1:2:3:4", limit=-1)
    related.add(db, site.home.id, TV, "::5", prefix_len=56, follow_ipv4=True, limit=-1)
    with (
        running_updater(tmp_path, db_url) as (port, config),
        pdns.start_pdns(tmp_path / "pdns", config, mode=mode, cache=False) as server,
    ):
        support.wait_until(lambda: server.rcode(ZONE, "SOA") == "NOERROR", what="the zone in PowerDNS")
        # Before the main host has an address, neither has its related names (as any host without one).
        assert _dig(server, NAS, "AAAA") == []
        secret = site.secrets[HOME]
        base = f"http://127.0.0.1:{port}/nic/update?hostname={HOME}"

        # The main host's update: the related names' addresses in the same answer's transaction.
        assert _get(f"{base}&myip=198.51.100.60,2001:db8:1:2::60", HOME, secret) == (
            "good 198.51.100.60,2001:db8:1:2::60\n"
        )
        _until(server, NAS, "AAAA", ["2001:db8:1:2:1:2:3:4"])
        _until(server, TV, "AAAA", ["2001:db8:1::5"])
        _until(server, TV, "A", ["198.51.100.60"])
        assert _dig(server, NAS, "A") == []

        # A prefix on its own (as a FRITZ!Box URL with <ip6lanprefix> sends it): the main host stays.
        assert _get(f"{base}&ip6lanprefix=2001:db8:77:6600::/56", HOME, secret) == (
            "good 198.51.100.60,2001:db8:1:2::60\n"
        )
        _until(server, NAS, "AAAA", ["2001:db8:77:6600:1:2:3:4"])
        _until(server, TV, "AAAA", ["2001:db8:77:6600::5"])
        assert _dig(server, HOME, "AAAA") == ["2001:db8:1:2::60"]
