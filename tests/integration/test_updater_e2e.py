"""End to end: a real updater answers ``good``, then a real PowerDNS with ddserver-recursor answers the new address."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from ddserver.db import Database
from tests import support
from tests.updater_support import ZONE, basic, make_site, running_updater

pdns = pytest.importorskip("tests.pdns")
HOME = f"home.{ZONE}"


def get(url: str, login: str, secret: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


@pytest.mark.slow
@pytest.mark.parametrize("cache", [False, True], ids=["caches-off", "caches-on"])
def test_update_is_answered_by_powerdns(db: Database, db_url: str, tmp_path: Path, cache: bool) -> None:
    site = make_site(db)
    with (
        running_updater(tmp_path, db_url) as (port, config),
        pdns.start_pdns(tmp_path / "pdns", config, mode="remote-socket", cache=cache) as server,
    ):
        support.wait_until(lambda: server.rcode(f"{ZONE}", "SOA") == "NOERROR", what="the zone in PowerDNS")
        assert server.addresses(HOME) == []
        secret = site.secrets[HOME]
        base = f"http://127.0.0.1:{port}/nic/update?hostname={HOME}"
        assert get(f"{base}&myip=198.51.100.60,2001:db8::60", HOME, secret) == "good 198.51.100.60,2001:db8::60\n"
        support.wait_until(
            lambda: server.addresses(HOME) == ["198.51.100.60", "2001:db8::60"],
            timeout=10,
            what="PowerDNS to answer the new addresses",
        )
        # A second change, one family, with the other kept (and cached answers purged when caches are on).
        assert get(f"{base}&myip=198.51.100.61", HOME, secret) == "good 198.51.100.61,2001:db8::60\n"
        support.wait_until(
            lambda: server.addresses(HOME) == ["198.51.100.61", "2001:db8::60"],
            timeout=10,
            what="PowerDNS to answer the changed address",
        )
        # ACME challenge records reach DNS the same way.
        url = f"http://127.0.0.1:{port}/nic/acme?hostname={HOME}&txt=challenge-e2e"
        assert get(url, HOME, secret) == "good\n"
        support.wait_until(
            lambda: server.records(f"_acme-challenge.{HOME}", "TXT") == ['"challenge-e2e"'],
            timeout=10,
            what="PowerDNS to answer the ACME challenge",
        )
