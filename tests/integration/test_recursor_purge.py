"""Cache purge through PowerDNS's HTTP API and through the pdns_control program, against a real pdns_server
with its packet and query caches at 60 s: an update is visible at once only if the purge reached it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver.dns.purge import PurgeError, PurgeMethod, Purger
from ddserver.store import hosts
from tests import support
from tests.integration.test_recursor import ZONE, populate
from tests.pdns import start_pdns

API_KEY = "test-api-key"


@pytest.mark.parametrize("method", ["api", "pdns_control"])
def test_update_visible_at_once_through_each_purge_method(method: str, tmp_path: Path) -> None:
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    data = populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npoll_interval = 0.1\n")
    env: dict[str, str] = {}
    extra = ""
    if method == "api":
        port = support.free_port()
        extra = (
            f"webserver=yes\napi=yes\napi-key={API_KEY}\nwebserver-address=127.0.0.1\nwebserver-port={port}\n"
            "webserver-allow-from=127.0.0.1/32\n"
        )
        env = {"DDSERVER_RECURSOR_API_URL": f"http://127.0.0.1:{port}", "DDSERVER_RECURSOR_API_KEY": API_KEY}
    else:
        support.require_binary("pdns_control", "/usr/bin/pdns_control")
    folder = tmp_path / "pdns"
    with start_pdns(
        folder, config, "remote-socket", cache=True, cache_ttl=60, purge=method, extra=extra, env=env
    ) as pdns:
        name = f"home.{ZONE}"
        assert pdns.records(name, "A") == ["192.0.2.1"]
        assert pdns.rcode(f"later.{ZONE}") == "NXDOMAIN"  # a cached negative answer
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.21")
        hosts.add(db, data["home"].user_id, f"later.{ZONE}", "h", default_limit=100, ipv4="192.0.2.78")
        # Far sooner than the 60 s the caches would keep the old answers.
        support.wait_until(lambda: pdns.records(name, "A") == ["203.0.113.21"], 10, what=f"the {method} purge")
        support.wait_until(lambda: pdns.records(f"later.{ZONE}", "A") == ["192.0.2.78"], 10, what="the new name")
        assert "cannot purge" not in pdns.log()
        if method == "api":
            # The same API refuses a wrong key: the purge reports it (the recursor logs it once).
            wrong = Purger(PurgeMethod.API, api_url=env["DDSERVER_RECURSOR_API_URL"], api_key="wrong")
            with pytest.raises(PurgeError, match="401"):
                wrong.purge((), {name})
        else:
            # pdns_control reaches this server only through --socket-dir; elsewhere it fails cleanly.
            lost = Purger(PurgeMethod.PDNS_CONTROL, socket_path=str(tmp_path / "nowhere" / "pdns.controlsocket"))
            with pytest.raises(PurgeError, match="pdns_control"):
                lost.purge((), {name})


def test_each_changed_name_is_purged_twice(tmp_path: Path) -> None:
    """An answer computed just before a change and still on its way to PowerDNS when the purge ran would enter
    its caches after the purge: every changed name is purged once more a moment later (REPURGE_AFTER)."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    data = populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, "[recursor]\npoll_interval = 0.1\n")
    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=True, cache_ttl=60) as pdns:
        name = f"home.{ZONE}"
        assert pdns.records(name, "A") == ["192.0.2.1"]
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.22")
        support.wait_until(lambda: pdns.records(name, "A") == ["203.0.113.22"], 10, what="the first purge")
        request = f"Cache clear request for '{name}$'"
        support.wait_until(lambda: pdns.log().count(request) >= 2, 10, what="the second purge")
        assert pdns.records(name, "A") == ["203.0.113.22"]
