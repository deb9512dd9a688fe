"""End to end: the real updater answers ``good``, the ddserver-rfc2136 daemon pushes, ``dig @named`` answers."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

from ddserver.db import Database
from ddserver.store import rfc2136 as rfc2136_store
from ddserver.store import zones
from tests import named as named_support
from tests import support
from tests.named import NamedServer
from tests.updater_support import ZONE, basic, make_site, write_updater_config

named = named_support.named  # the fixture
HOME = f"home.{ZONE}"


def get(url: str, login: str, secret: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def dig(server: NamedServer, name: str, rdtype: str) -> list[str]:
    dig_bin = support.require_binary("dig")
    out = subprocess.run(
        [dig_bin, f"@{server.host}", "-p", str(server.port), name, rdtype, "+short", "+tries=1", "+time=2"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return sorted(out.stdout.split())


def test_update_reaches_named(db: Database, db_url: str, tmp_path: Path, named: NamedServer) -> None:
    site = make_site(db)
    zones.update(
        db,
        site.zone.id,
        rfc2136_server=named.server,
        tsig_name=named.key_name,
        tsig_algorithm=named.key_algorithm,
        tsig_secret=named.secret,
    )
    port = support.free_port()
    config = write_updater_config(tmp_path / "ddserver.conf", db_url, port, extra="[rfc2136]\npoll_interval = 0.05\n")
    updater = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    pusher = support.Process(
        [support.console_script("ddserver-rfc2136"), "--config", str(config)], log=tmp_path / "rfc2136.log"
    )
    try:
        updater.wait_port("127.0.0.1", port)
        secret = site.secrets[HOME]
        base = f"http://127.0.0.1:{port}/nic/update?hostname={HOME}"
        assert get(f"{base}&myip=198.51.100.60,2001:db8::60", HOME, secret) == "good 198.51.100.60,2001:db8::60\n"
        support.wait_until(lambda: dig(named, HOME, "A") == ["198.51.100.60"], timeout=15, what="named to answer")
        assert dig(named, HOME, "AAAA") == ["2001:db8::60"]
        assert get(f"{base}&myip=198.51.100.61", HOME, secret) == "good 198.51.100.61,2001:db8::60\n"
        support.wait_until(lambda: dig(named, HOME, "A") == ["198.51.100.61"], timeout=15, what="the change")
        url = f"http://127.0.0.1:{port}/nic/acme?hostname={HOME}&txt=challenge-e2e"
        assert get(url, HOME, secret) == "good\n"
        support.wait_until(
            lambda: dig(named, f"_acme-challenge.{HOME}", "TXT") == ['"challenge-e2e"'], timeout=15, what="the TXT"
        )
        # A clean stop gives the zone's lease back at once, for another worker to take.
        pusher.signal(signal.SIGTERM)
        assert pusher.proc.wait(15) == 0
        lease = rfc2136_store.get_lease(db, site.zone.id)
        assert lease is not None and lease.expires_at == 0
        assert "Traceback" not in pusher.log()
    finally:
        pusher.stop()
        updater.stop()
