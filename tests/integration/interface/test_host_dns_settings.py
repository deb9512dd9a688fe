"""A host's TTL and wildcard set from the host form, ``ddserver host edit`` and the updater's ``wildcard=``, within
the rules of its zone (admin zone form, ``ddserver zone edit``), each answered by a real PowerDNS."""

from __future__ import annotations

import io
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ddserver import cli
from ddserver.db import Database
from ddserver.store import changes, hosts, zones
from tests import support
from tests.integration.interface.conftest import add_user, add_zone, csrf_of, form_for, log_in_as
from tests.updater_support import ZONE, basic, make_site, write_updater_config

pdns = pytest.importorskip("tests.pdns")
HOME, OFFICE = f"home.{ZONE}", f"office.{ZONE}"


def _get(url: str, login: str, secret: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def _cli(config: Path, *args: str, capsys: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    sys.stdin = io.StringIO("")
    code = cli.main(["--config", str(config), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _answer(server: Any, name: str) -> tuple[list[str], int | None]:
    """The A addresses PowerDNS gives for ``name`` and their TTL."""
    reply = server.query(name, "A")
    if not reply.answer:
        return [], None
    return sorted(r.to_text() for r in reply.answer[0]), reply.answer[0].ttl


@pytest.mark.slow
def test_ttl_and_wildcard_from_every_surface(
    db: Database, db_url: str, tmp_path: Path, make_app: Any, capsys: Any, monkeypatch: Any
) -> None:
    site = make_site(db)
    zones.update(db, site.zone.id, min_ttl=30, max_ttl=3600)
    port = support.free_port()
    config = write_updater_config(tmp_path / "ddserver.conf", db_url, port)
    monkeypatch.setenv("DDSERVER_AUTH_SECRET_KEY_FILE", str(tmp_path / "secret"))
    web = make_app()
    csrf = log_in_as(web, site.alice)
    updater = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    try:
        updater.wait_port("127.0.0.1", port)
        with pdns.start_pdns(tmp_path / "pdns", config, mode="remote-socket", cache=False) as server:
            support.wait_until(lambda: server.rcode(ZONE, "SOA") == "NOERROR", what="the zone in PowerDNS")
            secret = site.secrets[HOME]
            base = f"http://127.0.0.1:{port}/nic/update?hostname={HOME}"
            assert _get(f"{base}&myip=198.51.100.60", HOME, secret) == "good 198.51.100.60\n"

            # The host form: out of the zone's range is a form error, in range is saved and served.
            page = web.get(f"/hosts/{site.home.id}")
            form = form_for(page, f"/hosts/{site.home.id}/dns")
            form["ttl"] = "10"
            form["wildcard"] = True
            refused = form.submit(status=400)
            assert "The TTL must be between 30 and 3600 seconds." in refused.text
            assert hosts.get(db, HOME).ttl is None and not hosts.get(db, HOME).wildcard
            form = form_for(refused, f"/hosts/{site.home.id}/dns")
            form["ttl"] = "300"
            form.submit(status=303)
            assert (hosts.get(db, HOME).ttl, hosts.get(db, HOME).wildcard) == (300, True)
            support.wait_until(
                lambda: _answer(server, f"anything.{HOME}") == (["198.51.100.60"], 300),
                timeout=10,
                what="the wildcard below home with its TTL",
            )
            assert _answer(server, HOME) == (["198.51.100.60"], 300)
            # Without the CSRF token nothing changes.
            web.post(f"/hosts/{site.home.id}/dns", {"ttl": "60"}, status=403)

            # A name of its own below the wildcard keeps its own data (RFC 4592): here an ACME TXT record.
            acme = f"http://127.0.0.1:{port}/nic/acme?hostname={HOME}&txt=challenge-1"
            assert _get(acme, HOME, secret) == "good\n"
            support.wait_until(
                lambda: server.records(f"_acme-challenge.{HOME}", "TXT") == ['"challenge-1"'],
                timeout=10,
                what="the TXT record below the wildcard",
            )
            assert server.rcode(f"_acme-challenge.{HOME}", "A") == "NOERROR"
            assert _answer(server, f"_acme-challenge.{HOME}") == ([], None)

            # The updater: wildcard=OFF alone is a change (good) and the wildcard leaves DNS; NOCHG leaves it.
            serial = zones.get(db, ZONE).serial
            feed = changes.last_id(db)
            assert _get(f"{base}&myip=198.51.100.60&wildcard=OFF", HOME, secret) == "good 198.51.100.60\n"
            assert zones.get(db, ZONE).serial == serial + 1 and changes.last_id(db) == feed + 1
            support.wait_until(
                lambda: server.rcode(f"anything.{HOME}") == "NXDOMAIN", timeout=10, what="the wildcard to go"
            )
            assert _get(f"{base}&myip=198.51.100.60&wildcard=NOCHG", HOME, secret) == "nochg 198.51.100.60\n"
            assert _get(f"{base}&myip=198.51.100.61&wildcard=ON", HOME, secret) == "good 198.51.100.61\n"
            support.wait_until(
                lambda: _answer(server, f"x.{HOME}") == (["198.51.100.61"], 300), timeout=10, what="wildcard back"
            )

            # The admin command, with the same rules.
            code, _out, err = _cli(config, "host", "edit", OFFICE, "--ttl", "5", capsys=capsys)
            assert code == 1 and err.strip() == (
                f"ddserver: The TTL must be between 30 and 3600 seconds in the zone {ZONE}."
            )
            code, out, err = _cli(config, "host", "edit", OFFICE, "--ttl", "120", "--wildcard", capsys=capsys)
            assert code == 0 and out == f"{OFFICE}\tttl 120\twildcard\n", err
            office = f"http://127.0.0.1:{port}/nic/update?hostname={OFFICE}&myip=198.51.100.70"
            assert _get(office, OFFICE, site.secrets[OFFICE]) == "good 198.51.100.70\n"
            support.wait_until(
                lambda: _answer(server, f"a.b.{OFFICE}") == (["198.51.100.70"], 120), timeout=10, what="office *"
            )
            code, out, _err = _cli(config, "host", "edit", OFFICE, "--zone-ttl", capsys=capsys)
            assert code == 0 and out == f"{OFFICE}\tzone ttl\twildcard\n"
            support.wait_until(
                lambda: _answer(server, f"a.{OFFICE}") == (["198.51.100.70"], 60), timeout=10, what="zone TTL"
            )

            # The zone stops allowing wildcards: its hosts lose theirs, and no surface sets one again.
            code, out, _err = _cli(config, "zone", "edit", ZONE, "--no-wildcards", capsys=capsys)
            assert code == 0 and out == f"{ZONE}: host TTL 30-3600 s, no wildcards\n"
            assert not hosts.get(db, HOME).wildcard and not hosts.get(db, OFFICE).wildcard
            support.wait_until(
                lambda: server.rcode(f"x.{HOME}") == "NXDOMAIN" and server.rcode(f"x.{OFFICE}") == "NXDOMAIN",
                timeout=10,
                what="the wildcards to go with the zone's rule",
            )
            # The updater applies the rest of the update and ignores the wildcard.
            assert _get(f"{base}&myip=198.51.100.62&wildcard=ON", HOME, secret) == "good 198.51.100.62\n"
            assert _get(f"{base}&myip=198.51.100.62&wildcard=ON", HOME, secret) == "nochg 198.51.100.62\n"
            assert not hosts.get(db, HOME).wildcard
            code, _out, err = _cli(config, "host", "edit", OFFICE, "--wildcard", capsys=capsys)
            assert code == 1 and err == f"ddserver: The zone {ZONE} does not allow wildcard hosts.\n"
            page = web.post(
                f"/hosts/{site.home.id}/dns", {"ttl": "300", "wildcard": "1", "csrf_token": csrf}, status=400
            )
            assert "This zone does not allow wildcard hosts." in page.text
            assert server.rcode(f"x.{HOME}") == "NXDOMAIN"
    finally:
        updater.stop()


def test_admin_sets_the_zone_rules(db: Database, client: Any) -> None:
    admin = add_user(db, "root", admin=True, password=None)
    owner = add_user(db, "alice", password=None)
    zone = add_zone(db)
    host = hosts.add(db, owner.id, f"home.{zone.name}", "x", default_limit=5, ttl=600)
    hosts.set_properties(db, host.id, wildcard=True)
    log_in_as(client, admin)
    form = form_for(client.get(f"/admin/zones/{zone.id}"), f"/admin/zones/{zone.id}")
    assert (form["min_ttl"].value, form["max_ttl"].value, form["allow_wildcards"].checked) == ("60", "86400", True)
    form["min_ttl"] = "900"
    form["max_ttl"] = "300"
    page = form.submit(status=400)
    assert "The highest TTL must not be below the lowest." in page.text
    form = form_for(page, f"/admin/zones/{zone.id}")
    form["min_ttl"] = "0"
    form["max_ttl"] = "300"
    assert "The TTL must be between 1 and" in form.submit(status=400).text
    form["min_ttl"] = "120"
    form["allow_wildcards"] = False
    form.submit(status=303)
    saved = zones.get(db, zone.name)
    assert (saved.min_ttl, saved.max_ttl, saved.allow_wildcards) == (120, 300, False)
    # The host is brought within the new rules, in the same transaction as the zone's change.
    assert (hosts.get(db, host.name).ttl, hosts.get(db, host.name).wildcard) == (300, False)
    # A new zone takes the rules from the same form.
    form = form_for(client.get("/admin/zones/new"), "/admin/zones/new")
    form["name"] = "other.example.org"
    form["nameservers"] = "ns1.example.org"
    form["hostmaster"] = "hostmaster@example.org"
    form["min_ttl"] = "30"
    form.submit(status=303)
    other = zones.get(db, "other.example.org")
    assert (other.min_ttl, other.max_ttl, other.allow_wildcards) == (30, 86400, True)
    # The owner's form shows the range.
    log_in_as(client, owner)
    page = client.get(f"/hosts/{host.id}")
    assert "from 120 to 300 seconds" in page.text and "This zone does not allow wildcard hosts." in page.text
    assert csrf_of(page)


@pytest.mark.slow
def test_a_host_of_its_own_below_a_wildcard_wins(db: Database, db_url: str, tmp_path: Path, capsys: Any) -> None:
    """``lab.example.org`` is a wildcard host of example.org; ``dyn.lab.example.org`` is a zone of its own with a host:
    that host answers with its address, other names below lab.example.org (outside that zone) with lab's."""
    site = make_site(db)
    parent = add_zone(db, "example.org")
    lab = hosts.add(db, site.alice.id, "lab.example.org", "x", default_limit=-1, ipv4="192.0.2.80")
    add_zone(db, "dyn.lab.example.org")
    own = hosts.add(db, site.alice.id, "nas.dyn.lab.example.org", "x", default_limit=-1, ipv4="192.0.2.81")
    config = support.write_config_file(tmp_path / "ddserver.conf", db_url)
    code, out, err = _cli(config, "host", "edit", lab.name, "--wildcard", "--ttl", "90", capsys=capsys)
    assert code == 0 and out == f"{lab.name}\tttl 90\twildcard\n", err
    assert parent.allow_wildcards
    with pdns.start_pdns(tmp_path / "pdns", config, mode="remote-socket", cache=False) as server:
        support.wait_until(lambda: server.rcode("example.org", "SOA") == "NOERROR", what="the zones in PowerDNS")
        assert _answer(server, lab.name) == (["192.0.2.80"], 90)
        assert _answer(server, "printer.lab.example.org") == (["192.0.2.80"], 90)
        assert _answer(server, own.name) == (["192.0.2.81"], 60)
        # The zone below is cut out of the wildcard as a whole, as DNS has it: its other names do not exist.
        assert server.rcode("other.dyn.lab.example.org") == "NXDOMAIN"
