"""The updater app called in-process on each database dialect: every answer code, both families, auth modes,
proxies, limits, ACME records, metrics, and what is stored per host."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ddserver import passwords, secrets
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import changes, hosts, records, updates, users, zones
from ddserver.updater import main as updater_main
from ddserver.updater.app import create_app
from tests import support
from tests.updater_support import ZONE, Site, basic, call, host_row, make_site, updater_config

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"
OTHER = f"other.{ZONE}"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


@pytest.fixture
def app(config: Config, db: Database, site: Site):  # type: ignore[no-untyped-def]
    return create_app(updater_config(config), db)


def update(app, site: Site, params: dict[str, str], login: str = HOME, **kw):  # type: ignore[no-untyped-def]
    secret = site.secrets.get(login, site.token) if login in site.secrets else site.token
    return call(app, "/nic/update", params, auth=(login, kw.pop("secret", secret)), **kw)


def test_good_then_nochg_with_host_credentials(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    serial = zones.get(db, ZONE).serial
    feed = changes.last_id(db)
    reply = update(app, site, {"hostname": HOME, "myip": "198.51.100.1"})
    assert (reply.status, reply.body) == (200, "good 198.51.100.1\n")
    assert reply.headers["content-type"].startswith("text/plain")
    # Committed before the answer: address, serial and feed.
    assert hosts.get(db, HOME).ipv4 == "198.51.100.1"
    assert zones.get(db, ZONE).serial == serial + 1
    assert [c.name for c in changes.since(db, feed)] == [HOME]
    reply = update(app, site, {"hostname": HOME, "myip": "198.51.100.1"})
    assert reply.body == "nochg 198.51.100.1\n"
    assert zones.get(db, ZONE).serial == serial + 1


def test_status_kept_per_host(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    update(app, site, {"hostname": HOME}, remote="203.0.113.9", scheme="https")
    row = host_row(db, HOME)
    assert row["ipv4"] == "203.0.113.9"
    assert row["last_client"] == "203.0.113.9" and row["last_tls"] == 1 and row["last_result"] == "good"
    assert row["last_update_at"] and row["address_changed_at"]


def test_both_families_and_each_kept(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    assert update(app, site, {"myip": "198.51.100.1,2001:db8::1"}).body == "good 198.51.100.1,2001:db8::1\n"
    # One family alone keeps the other.
    assert update(app, site, {"myipv6": "2001:db8::2"}).body == "good 198.51.100.1,2001:db8::2\n"
    assert update(app, site, {"myip": "198.51.100.3"}).body == "good 198.51.100.3,2001:db8::2\n"
    assert update(app, site, {"myip": "198.51.100.3,2001:db8::2"}).body == "nochg 198.51.100.3,2001:db8::2\n"
    # No address: the client's, for its family only.
    assert update(app, site, {}, remote="2001:db8::99").body == "good 198.51.100.3,2001:db8::99\n"
    host = hosts.get(db, HOME)
    assert (host.ipv4, host.ipv6) == ("198.51.100.3", "2001:db8::99")
    # The unspecified address of a router that has none of a family keeps that family.
    assert update(app, site, {"myip": "198.51.100.4,::"}).body == "good 198.51.100.4,2001:db8::99\n"
    # offline=YES clears both.
    assert update(app, site, {"offline": "YES"}).body == "good\n"
    host = hosts.get(db, HOME)
    assert (host.ipv4, host.ipv6) == (None, None)


def test_delete_one_family_or_both(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    update(app, site, {"myip": "198.51.100.1,2001:db8::1"})
    reply = call(app, "/nic/delete", {"hostname": HOME, "family": "6"}, auth=(HOME, site.secrets[HOME]))
    assert reply.body == "good 198.51.100.1\n"
    assert hosts.get(db, HOME).ipv6 is None
    reply = call(app, "/nic/delete", {"hostname": HOME, "family": "6"}, auth=(HOME, site.secrets[HOME]))
    assert reply.body == "nochg 198.51.100.1\n"
    # Without family: the family of the client's address.
    reply = call(app, "/nic/delete", {}, auth=(HOME, site.secrets[HOME]), remote="192.0.2.77")
    assert reply.body == "good\n"
    assert hosts.get(db, HOME).ipv4 is None


def test_auth_modes(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    # Account token: every host of the account, several at once, in request order.
    reply = call(
        app, "/nic/update", {"hostname": f"{OFFICE},{HOME}", "myip": "198.51.100.5"}, auth=("alice", site.token)
    )
    assert reply.lines == ["good 198.51.100.5", "good 198.51.100.5"]
    # ...but not bob's host.
    reply = call(
        app, "/nic/update", {"hostname": f"{HOME},{OTHER}", "myip": "198.51.100.6"}, auth=("alice", site.token)
    )
    assert reply.lines == ["good 198.51.100.6", "nohost"]
    # ddserver 0.2: user name and the host's secret, for that host.
    reply = call(app, "/nic/update", {"hostname": OFFICE, "myip": "198.51.100.7"}, auth=("alice", site.secrets[OFFICE]))
    assert reply.body == "good 198.51.100.7\n"
    reply = call(app, "/nic/update", {"hostname": f"{OFFICE},{HOME}"}, auth=("alice", site.secrets[OFFICE]))
    assert reply.lines[1] == "nohost"
    # Without hostname it finds the host whose secret it is.
    reply = call(app, "/nic/update", {"myip": "198.51.100.8"}, auth=("alice", site.secrets[OFFICE]))
    assert reply.body == "good 198.51.100.8\n"
    # A token names no single host: a hostname is needed.
    assert call(app, "/nic/update", {}, auth=("alice", site.token)).body == "notfqdn\n"
    # Host credentials cover that host only.
    assert update(app, site, {"hostname": OFFICE}).body == "nohost\n"
    # Credentials in the query, as routers that only build URLs send them.
    reply = call(
        app, "/nic/update", {"hostname": HOME, "myip": "198.51.100.9", "username": HOME, "password": site.secrets[HOME]}
    )
    assert reply.body == "good 198.51.100.9\n"
    reply = call(app, "/nic/update", {"hostname": HOME, "myip": "198.51.100.10", "user": "alice", "pass": site.token})
    assert reply.body == "good 198.51.100.10\n"


@pytest.mark.parametrize(
    "auth",
    [None, (HOME, "wrong"), ("alice", "wrong"), ("nobody", "x"), (f"nohost.{ZONE}", "x"), (OTHER, "wrong")],
)
def test_badauth(app, site: Site, auth) -> None:  # type: ignore[no-untyped-def]
    reply = call(app, "/nic/update", {"hostname": f"{HOME},{OFFICE}"}, auth=auth)
    assert reply.status == 401
    assert reply.lines == ["badauth", "badauth"]
    assert reply.headers["www-authenticate"] == 'Basic realm="ddserver"'


def test_every_other_code(app, site: Site, db: Database, config: Config) -> None:  # type: ignore[no-untyped-def]
    assert update(app, site, {"hostname": "nodots"}).body == "notfqdn\n"
    assert update(app, site, {"hostname": "a..b.example.org"}).body == "notfqdn\n"
    assert update(app, site, {"hostname": f"missing.{ZONE}"}).body == "nohost\n"
    names = ",".join(f"h{i}.{ZONE}" for i in range(21))
    assert update(app, site, {"hostname": names}).body == "numhost\n"
    assert update(app, site, {"hostname": HOME, "myip": "not-an-ip"}).body == "badagent\n"
    assert update(app, site, {"hostname": HOME, "myip": "1.2.3.4,5.6.7.8"}).body == "badagent\n"
    assert update(app, site, {"hostname": HOME, "myip": "224.0.0.1"}).body == "badagent\n"
    # A flagged host is answered abuse.
    hosts.set_flags(db, site.home.id, abuse=True)
    assert update(app, site, {"hostname": HOME}).body == "abuse\n"
    # A blocked agent is answered badagent.
    strict = create_app(updater_config(config, blocked_agents=("EvilBot",)), db)
    assert update(strict, site, {"hostname": OFFICE}, login=OFFICE, headers={"User-Agent": "evilbot/2"}).body == (
        "badagent\n"
    )
    # Unknown parameters and the dyndns2 extras are ignored.
    reply = update(
        app,
        site,
        {
            "hostname": OFFICE,
            "myip": "198.51.100.1",
            "wildcard": "ON",
            "mx": "x",
            "backmx": "YES",
            "system": "custom",
            "whatever": "1",
        },
        login=OFFICE,
    )
    assert reply.body == "good 198.51.100.1\n"


def test_911_when_the_database_is_gone(config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tests import support

    gone = Database(f"mysql://root@127.0.0.1:{support.free_port()}/nothing", connect_timeout=1)
    app = create_app(config, gone)
    with caplog.at_level(logging.ERROR):
        reply = call(app, "/nic/update", {"hostname": HOME}, auth=(HOME, "secret"))
    assert (reply.status, reply.body) == (200, "911\n")
    assert "cannot connect" in caplog.text
    assert call(app, "/health").status == 503


def test_blocked_hosts_answer_abuse_without_the_database(config: Config, tmp_path: Path) -> None:
    from tests import support

    gone = Database(f"mysql://root@127.0.0.1:{support.free_port()}/nothing", connect_timeout=1)
    app = create_app(updater_config(config, blocked_hosts=("*.bad.example.org", HOME)), gone)
    assert call(app, "/nic/update", {"hostname": "x.bad.example.org"}, auth=("alice", "pw")).body == "abuse\n"
    assert call(app, "/nic/update", {}, auth=(HOME, "pw")).body == "abuse\n"


def test_trusted_and_untrusted_proxies(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    forwarded = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}
    # From an untrusted peer the headers are ignored.
    assert update(app, site, {}, remote="192.0.2.20", headers=forwarded).body == "good 192.0.2.20\n"
    assert host_row(db, HOME)["last_tls"] == 0
    # From a trusted proxy (127.0.0.1 by default) they are believed.
    assert update(app, site, {}, remote="127.0.0.1", headers=forwarded).body == "good 203.0.113.50\n"
    assert host_row(db, HOME)["last_tls"] == 1
    assert update(app, site, {}, remote="::1", headers={"X-Real-IP": "2001:db8::50"}).body == (
        "good 203.0.113.50,2001:db8::50\n"
    )
    # IPv4-mapped IPv6 from the connection becomes IPv4.
    assert update(app, site, {}, remote="::ffff:192.0.2.33").body == "good 192.0.2.33,2001:db8::50\n"
    assert call(app, "/nic/ip", remote="127.0.0.1", headers={"X-Forwarded-For": "203.0.113.51"}).body == (
        "203.0.113.51\n"
    )


def test_ip_endpoints(app) -> None:  # type: ignore[no-untyped-def]
    assert call(app, "/nic/ip", remote="192.0.2.1").body == "192.0.2.1\n"
    assert call(app, "/myip", remote="2001:db8::1").body == "2001:db8::1\n"
    assert call(app, "/nic/ip4", remote="192.0.2.1").body == "192.0.2.1\n"
    assert call(app, "/nic/ip4", remote="2001:db8::1").status == 404
    assert call(app, "/nic/ip6", remote="2001:db8::1").body == "2001:db8::1\n"


def test_paths_methods_and_post(app, site: Site) -> None:  # type: ignore[no-untyped-def]
    for path in ("/v3/update", "/update", "/nic/dyndns", "/nic/statdns", "/api/update"):
        reply = call(app, path, {"hostname": HOME, "myip": "198.51.100.1"}, auth=(HOME, site.secrets[HOME]))
        assert reply.lines[0] in ("good 198.51.100.1", "nochg 198.51.100.1")
    reply = call(
        app,
        "/nic/update",
        method="POST",
        form={"hostname": HOME, "myip": "198.51.100.2"},
        auth=(HOME, site.secrets[HOME]),
    )
    assert reply.body == "good 198.51.100.2\n"
    assert call(app, "/nic/update", method="PUT").status == 405
    reply = call(app, "/nope")
    assert reply.status == 404 and "Traceback" not in reply.body
    # Bytes that are not UTF-8 make a bad name, not an error.
    assert update(app, site, "hostname=%ff%fe.dyn.example.org").body == "notfqdn\n"


def _flood(app, login: str, count: int, addresses: int, net: str = "203.0.113") -> list[str]:  # type: ignore[no-untyped-def]
    """Wrong secrets for ``login`` through the trusted proxy, from ``addresses`` client addresses in turn."""
    answers = []
    for n in range(count):
        forwarded = {"X-Forwarded-For": f"{net}.{n % addresses + 1}"}
        reply = call(app, "/nic/update", {}, auth=(login, f"wrong-{n}"), remote="127.0.0.1", headers=forwarded)
        answers.append(reply.body.strip())
    return answers


def test_strangers_failures_never_refuse_the_right_secret(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, auth_failures_per_client=3, auth_failures_per_account=5), db)
    assert update(app, site, {"myip": "192.0.2.1"}, remote="192.0.2.66").body == "good 192.0.2.1\n"
    # 160 wrong secrets for each login (the host name, the user name) from 40 addresses: each address passes
    # its own limit, and every login has far more failures than any per-login limit would let through.
    for login, net in ((HOME, "203.0.113"), ("alice", "198.51.100")):
        answers = _flood(app, login, 160, 40, net)
        assert answers == ["badauth"] * 120 + ["abuse"] * 40
    # Wrong secrets are still counted per client address: one over its limit is answered abuse.
    assert call(app, "/nic/update", {}, auth=(HOME, "wrong"), remote="127.0.0.1",
                headers={"X-Forwarded-For": "203.0.113.1"}).body == "abuse\n"  # fmt: skip
    # The right credentials of every kind: from the router's usual address, from a new one, and from an
    # address that is itself over its limit (a shared address: carrier-grade NAT).
    for remote in ("192.0.2.66", "198.51.100.99", "203.0.113.1"):
        forwarded = {"X-Forwarded-For": remote}
        reply = update(app, site, {"myip": remote}, remote="127.0.0.1", headers=forwarded)
        assert reply.body == f"good {remote}\n"
        reply = call(app, "/nic/update", {"hostname": OFFICE, "myip": remote}, auth=("alice", site.token),
                     remote="127.0.0.1", headers=forwarded)  # fmt: skip
        assert reply.body == f"good {remote}\n"
        reply = call(app, "/nic/update", {"hostname": OFFICE, "myip": remote},
                     auth=("alice", site.secrets[OFFICE]), remote="127.0.0.1", headers=forwarded)  # fmt: skip
        assert reply.body == f"nochg {remote}\n"
        reply = call(app, "/nic/acme", {"txt": f"challenge-{remote}"}, auth=(HOME, site.secrets[HOME]),
                     remote="127.0.0.1", headers=forwarded)  # fmt: skip
        assert reply.body == "good\n"
    # Other accounts are not affected either.
    assert call(app, "/nic/update", {}, auth=(OTHER, site.secrets[OTHER]), remote="203.0.113.1").body.startswith("good")


def test_an_ipv6_client_is_counted_by_its_64(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, auth_failures_per_client=3, auth_failures_per_account=0), db)
    answers = [call(app, "/nic/update", {}, auth=(HOME, "wrong"), remote=f"2001:db8:1:2::{n}").body for n in range(5)]
    assert answers == ["badauth\n"] * 3 + ["abuse\n"] * 2
    assert call(app, "/nic/update", {}, auth=(HOME, "wrong"), remote="2001:db8:1:3::1").body == "badauth\n"


def test_an_imported_weak_password_is_guarded_and_its_router_served(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, auth_failures_per_client=3, auth_failures_per_account=5), db)
    legacy = passwords._context().handler("sha512_crypt").hash("old-router-password")
    hosts.set_secret_hash(db, site.home.id, legacy)
    weak = (HOME, "old-router-password")
    # The router updates from its usual address; the password is re-hashed, and stays marked as weak.
    assert call(app, "/nic/update", {}, auth=weak, remote="192.0.2.66").body == "good 192.0.2.66\n"
    assert secrets.is_weak_hash(host_row(db, HOME)["secret_hash"])
    # Guesses from many addresses: past auth_failures_per_account failures of this host's password (whatever
    # the login that named it), it is checked only for its router's address.
    answers = _flood(app, HOME, 40, 40) + _flood(app, "alice", 40, 40, "198.51.100")
    assert answers[:5] == ["badauth"] * 5 and set(answers[5:]) == {"abuse"}
    assert call(app, "/nic/update", {}, auth=weak, remote="198.51.100.199").body == "abuse\n"
    assert call(app, "/nic/update", {}, auth=("alice", weak[1]), remote="198.51.100.199").body == "abuse\n"
    # The router's own address is served, and so is a strong credential from anywhere.
    assert call(app, "/nic/update", {"myip": "192.0.2.67"}, auth=weak, remote="192.0.2.66").body == (
        "good 192.0.2.67\n"
    )
    assert call(app, "/nic/update", {"hostname": HOME}, auth=("alice", site.token), remote="198.51.100.99").body == (
        "good 198.51.100.99\n"
    )
    # A secret made by the server is never weak, and is served from anywhere.
    new = secrets.new_host_secret()
    hosts.set_secret_hash(db, site.home.id, secrets.hash_host_secret(new))
    assert call(app, "/nic/update", {}, auth=(HOME, new), remote="198.51.100.98").body == "good 198.51.100.98\n"


def test_a_weak_password_not_yet_rehashed_is_guarded_too(config: Config, db: Database, site: Site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = create_app(updater_config(config, auth_failures_per_client=3, auth_failures_per_account=5), db)
    legacy = passwords._context().handler("sha512_crypt").hash("old-router-password")
    hosts.set_secret_hash(db, site.home.id, legacy)
    monkeypatch.setattr(updates, "rehash_secret", lambda *args, **kwargs: False)
    checks = []
    real = passwords.verify_legacy
    monkeypatch.setattr(passwords, "verify_legacy", lambda *args: checks.append(1) or real(*args))
    answers = _flood(app, HOME, 30, 30)
    # The slow hash is spent on 5 guesses only, whatever the number of addresses.
    assert answers[:5] == ["badauth"] * 5 and set(answers[5:]) == {"abuse"} and len(checks) == 5
    assert call(app, "/nic/update", {}, auth=(HOME, "old-router-password"), remote="198.51.100.99").body == "abuse\n"


def test_faults_flag_a_host_for_abuse(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, nochg_interval=600, min_interval=600, fault_limit=4), db)
    auth = (HOME, site.secrets[HOME])
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body == "good 198.51.100.1\n"
    # A change too soon, a nochg flood and a bad request each count one fault.
    assert call(app, "/nic/update", {"myip": "198.51.100.2"}, auth=auth).body == "good 198.51.100.2\n"
    assert call(app, "/nic/update", {"myip": "198.51.100.2"}, auth=auth).body == "nochg 198.51.100.2\n"
    assert call(app, "/nic/update", {"hostname": OFFICE}, auth=auth).body == "nohost\n"
    assert host_row(db, HOME)["fault_window_count"] == 3
    feed = changes.last_id(db)
    assert call(app, "/nic/update", {"myip": "bad"}, auth=auth).body == "badagent\n"
    row = host_row(db, HOME)
    assert row["abuse"] == 1 and row["client_faults"] == 4
    # Flagging takes the host out of DNS, through the feed.
    assert [c.name for c in changes.since(db, feed)] == [HOME]
    assert call(app, "/nic/update", {"myip": "198.51.100.3"}, auth=auth).body == "abuse\n"
    assert hosts.get(db, HOME).ipv4 == "198.51.100.2"


def test_nochg_costs_no_write_while_the_status_is_fresh(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config, status_refresh=3600), db)
    auth = (HOME, site.secrets[HOME])
    call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth)
    db.run(lambda tx: tx.execute("UPDATE hosts SET last_client = 'marker' WHERE name = ?", (HOME,)))
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body == "nochg 198.51.100.1\n"
    assert host_row(db, HOME)["last_client"] == "marker"
    db.run(lambda tx: tx.execute("UPDATE hosts SET last_update_at = 1 WHERE name = ?", (HOME,)))
    call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth)
    row = host_row(db, HOME)
    assert row["last_client"] == "192.0.2.10" and row["last_result"] == "nochg"


def test_legacy_secret_is_rehashed(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    legacy = passwords._context().handler("sha512_crypt").hash("old-router-password")
    hosts.set_secret_hash(db, site.home.id, legacy)
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=(HOME, "old-router-password")).body.startswith(
        "good"
    )
    assert host_row(db, HOME)["secret_hash"] == secrets.hash_host_secret("old-router-password", weak=True)
    assert call(app, "/nic/update", {"myip": "198.51.100.2"}, auth=(HOME, "old-router-password")).body.startswith(
        "good"
    )


def test_legacy_secret_left_in_place_still_updates(app, site: Site, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The re-hash did not happen (someone replaced the hash meanwhile, or as the benchmark's slow-hash server
    # does it): the update is checked against the hash that is there.
    legacy = passwords._context().handler("sha512_crypt").hash("old-router-password")
    hosts.set_secret_hash(db, site.home.id, legacy)
    monkeypatch.setattr(updates, "rehash_secret", lambda *args, **kwargs: False)
    for address in ("198.51.100.1", "198.51.100.2"):
        reply = call(app, "/nic/update", {"myip": address}, auth=(HOME, "old-router-password"))
        assert reply.body == f"good {address}\n"
    assert host_row(db, HOME)["secret_hash"] == legacy


def test_pepper(config: Config, db: Database) -> None:
    site = make_site(db, pepper="pepper!")
    app = create_app(updater_config(config.replace("auth", pepper="pepper!")), db)
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=(HOME, site.secrets[HOME])).body.startswith("good")
    unpeppered = create_app(updater_config(config), db)
    assert call(unpeppered, "/nic/update", {}, auth=(HOME, site.secrets[HOME])).status == 401


def test_disabled_account_is_answered_abuse(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    users.set_flags(db, site.alice.id, is_disabled=True)
    assert update(app, site, {"myip": "198.51.100.1"}).body == "abuse\n"


def test_acme_records(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    auth = (HOME, site.secrets[HOME])
    name = f"_acme-challenge.{HOME}"
    feed = changes.last_id(db)
    assert call(app, "/nic/acme", {"hostname": HOME, "txt": "challenge-1"}, auth=auth).body == "good\n"
    assert call(app, "/nic/acme", {"hostname": name, "txt": "challenge-1"}, auth=auth).body == "nochg\n"
    assert call(app, "/nic/acme", {"txt": "challenge-2"}, auth=auth).body == "good\n"
    assert sorted(r.content for r in records.for_host(db, site.home.id) if r.name == name) == [
        "challenge-1",
        "challenge-2",
    ]
    assert name in [c.name for c in changes.since(db, feed)]
    assert call(app, "/nic/acme", {"txt": 'bad"value'}, auth=auth).body == "badagent\n"
    assert call(app, "/nic/acme", {"hostname": OFFICE, "txt": "x"}, auth=auth).body == "nohost\n"
    assert call(app, "/nic/acme", {"txt": "x"}, auth=(HOME, "wrong")).status == 401
    assert call(app, "/nic/acme", {"action": "delete", "txt": "challenge-1"}, auth=auth).body == "good\n"
    assert call(app, "/nic/acme", {"action": "delete"}, auth=auth).body == "good\n"
    assert call(app, "/nic/acme", {"action": "delete"}, auth=auth).body == "nochg\n"
    assert records.for_host(db, site.home.id) == []
    # The account token works for the account's hosts.
    assert call(app, "/nic/acme", {"hostname": OFFICE, "txt": "t"}, auth=("alice", site.token)).body == "good\n"


def test_metrics(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config), db)
    call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=(HOME, site.secrets[HOME]))
    call(app, "/nic/update", {}, auth=(HOME, "wrong"))
    page = call(app, "/metrics", remote="127.0.0.1")
    assert page.status == 200
    assert 'ddserver_updater_answers_total{code="good"} 1' in page.body
    assert 'ddserver_updater_answers_total{code="badauth"} 1' in page.body
    assert "ddserver_updater_request_seconds_count 2" in page.body
    assert call(app, "/metrics", remote="192.0.2.1").status == 403
    off = create_app(updater_config(config, metrics=False), db)
    assert call(off, "/metrics", remote="127.0.0.1").status == 404


def test_host_deleted_between_read_and_write(app, site: Site, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ddserver.store import updates

    real = updates.apply_many

    def deleting(*args, **kwargs):  # type: ignore[no-untyped-def]
        hosts.delete(db, site.home.id)
        return real(*args, **kwargs)

    monkeypatch.setattr(updates, "apply_many", deleting)
    assert update(app, site, {"myip": "198.51.100.1"}).body == "nohost\n"


def test_metrics_of_worker_processes_are_summed(tmp_path: Path) -> None:
    """Each worker shares its counters in a folder; any worker's /metrics shows the sum (a file per worker)."""
    from ddserver.updater.metrics import Metrics
    from ddserver.updater.protocol import Code

    other = Metrics()
    other.observe("update", [Code.GOOD, Code.NOCHG], 0.002)
    other.observe_batch(1)
    (tmp_path / "4242.json").write_text(json.dumps(other._own()))
    (tmp_path / "4243.json").write_text("{")  # a worker's file being replaced: skipped this time
    mine = Metrics(tmp_path)
    mine.observe("update", [Code.GOOD], 0.02)
    page = mine.render()
    assert 'ddserver_updater_answers_total{code="good"} 2\n' in page
    assert 'ddserver_updater_answers_total{code="nochg"} 1\n' in page
    assert 'ddserver_updater_request_seconds_bucket{le="0.0025"} 1\n' in page
    assert "ddserver_updater_request_seconds_count 2\n" in page
    assert "ddserver_updater_commits_total 1\n" in page
    # Its own counters reach the folder too, for the other workers.
    support.wait_until(lambda: (tmp_path / f"{os.getpid()}.json").exists(), what="the shared file")


def test_stale_metrics_folders_are_removed_at_start(tmp_path: Path) -> None:
    """A server that was killed leaves its metrics folder; the next one to start removes it, and only it."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{updater_main.METRICS_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{updater_main.METRICS_PREFIX}{os.getpid()}-def"
    other = tmp_path / "something-else"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "1.json").write_text("{}")
    with updater_main._metrics_folder(str(tmp_path)) as mine:
        assert not stale.exists() and live.exists() and other.exists()
        assert Path(mine).name.startswith(f"{updater_main.METRICS_PREFIX}{os.getpid()}-")
    assert not Path(mine).exists()


def test_a_worker_settles_the_collector_once_its_app_is_made(config: Config, tmp_path: Path) -> None:
    # In a process of its own: freezing the collector here would change the rest of the test session.
    config_file = tmp_path / "ddserver.conf"
    config_file.write_text(f"[database]\nurl = {config.database.url}\n\n[auth]\nsecret_key = test-secret-key\n")
    script = (
        "import gc, sys\n"
        "from ddserver.config import load_config\n"
        "from ddserver.updater.main import worker_app\n"
        "assert gc.get_threshold()[0] == 700 and gc.get_freeze_count() == 0\n"
        "worker_app(load_config(sys.argv[1], env={}))\n"
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run(
        [support.python_bin(), "-c", script, str(config_file)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["10000", "True"], out.stderr


def test_the_fast_path_answers_as_bottle_does(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    """GET requests to the update and delete paths skip Bottle's routing: the same status line, headers and body
    as through Bottle, for answers that repeat (so both calls get the same one)."""
    assert update(app, site, {"hostname": HOME, "myip": "198.51.100.1"}).body == "good 198.51.100.1\n"
    hosts.set_flags(db, site.other.id, blocked=True)
    many = ",".join(f"h{i}.{ZONE}" for i in range(21))
    cases = [
        ("/nic/update", f"hostname={HOME}&myip=198.51.100.1", site.secrets[HOME]),  # nochg
        ("/update", f"hostname={HOME}&myip=198.51.100.1", site.secrets[HOME]),
        ("/nic/update", f"hostname={HOME}&myip=198.51.100.1", "wrong"),  # badauth, 401
        ("/nic/update", f"hostname={many}&myip=198.51.100.1", site.secrets[HOME]),  # numhost
        ("/nic/update", f"hostname={HOME}&myip=not-an-address", site.secrets[HOME]),  # badagent
        ("/nic/update", f"hostname={HOME}&myip=198.51.100.1,198.51.100.2", site.secrets[HOME]),
        ("/nic/update", f"hostname={OTHER}&myip=198.51.100.1", site.secrets[OTHER]),  # abuse
        ("/nic/update", f"hostname=%ff%fe.{ZONE}", site.secrets[HOME]),  # notfqdn
        ("/nic/delete", "family=6", site.secrets[HOME]),
    ]
    for path, query, secret in cases:
        login = OTHER if secret == site.secrets.get(OTHER) else HOME
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "192.0.2.10",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "HTTP_AUTHORIZATION": basic(login, secret),
            "HTTP_X_REQUEST_ID": "req-1",
        }
        replies = []
        for wsgi in (app, app.wsgi):
            started: list[Any] = []

            def start_response(status: str, headers: list[Any], exc_info: Any = None, started: list = started) -> None:
                started.append((status, headers))

            body = b"".join(wsgi(dict(environ), start_response))
            replies.append((started, body))
        # The app adds the request id (the incoming one, being sane) around Bottle and the fast path alike.
        (status, headers), *_ = replies[0][0]
        assert headers[-1] == ("X-Request-Id", "req-1")
        replies[0] = ([(status, headers[:-1])], replies[0][1])
        assert replies[0] == replies[1], (path, query)
        assert path in app.fast


@pytest.mark.parametrize("cached", [False, True], ids=["cache-off", "cache-on"])
def test_wildcard_parameter(config: Config, db: Database, site: Site, cached: bool) -> None:
    """wildcard=ON|OFF is a change of its own (good, serial, feed), for every host of an account-token request
    too; NOCHG leaves it; a zone without wildcards ignores ON and applies the rest."""
    app = create_app(updater_config(config, host_cache=1000 if cached else 0), db)
    try:
        _wildcard_requests(app, db, site)
    finally:
        app.config["ddserver.updater"].close()


def _wildcard_requests(app: Any, db: Database, site: Site) -> None:
    assert update(app, site, {"myip": "198.51.100.1"}).body == "good 198.51.100.1\n"
    serial, feed = zones.get(db, ZONE).serial, changes.last_id(db)
    assert update(app, site, {"myip": "198.51.100.1", "wildcard": "ON"}).body == "good 198.51.100.1\n"
    assert hosts.get(db, HOME).wildcard
    assert zones.get(db, ZONE).serial == serial + 1 and [c.name for c in changes.since(db, feed)] == [HOME]
    assert update(app, site, {"myip": "198.51.100.1", "wildcard": "ON"}).body == "nochg 198.51.100.1\n"
    assert update(app, site, {"myip": "198.51.100.1", "wildcard": "NOCHG"}).body == "nochg 198.51.100.1\n"
    assert update(app, site, {"myip": "198.51.100.1", "wildcard": "OFF"}).body == "good 198.51.100.1\n"
    assert not hosts.get(db, HOME).wildcard
    reply = update(app, site, {"hostname": f"{HOME},{OFFICE}", "myip": "198.51.100.1", "wildcard": "ON"}, login="alice")
    assert reply.body == "good 198.51.100.1\ngood 198.51.100.1\n"
    assert hosts.get(db, HOME).wildcard and hosts.get(db, OFFICE).wildcard
    zones.update(db, site.zone.id, allow_wildcards=False)
    assert not hosts.get(db, HOME).wildcard
    assert update(app, site, {"myip": "198.51.100.2", "wildcard": "ON"}).body == "good 198.51.100.2\n"
    assert update(app, site, {"myip": "198.51.100.2", "wildcard": "ON"}).body == "nochg 198.51.100.2\n"
    assert not hosts.get(db, HOME).wildcard


def test_myip_json_for_the_interfaces_pages(config: Config, db: Database) -> None:
    app = create_app(updater_config(config).replace("http", base_url="https://ddserver.example.test/"), db)
    origin = {"Origin": "https://ddserver.example.test"}
    reply = call(app, "/api/myip", remote="192.0.2.1", headers=origin)
    assert reply.status == 200 and json.loads(reply.body) == {"address": "192.0.2.1", "family": "ipv4"}
    assert reply.headers["content-type"] == "application/json" and reply.headers["cache-control"] == "no-store"
    # Only the interface's own origin may read it: no other site learns the visitor's other address.
    assert reply.headers["access-control-allow-origin"] == "https://ddserver.example.test"
    assert reply.headers["vary"] == "Origin"
    reply = call(app, "/api/myip", remote="2001:db8::1", headers={"Origin": "https://evil.example"})
    assert json.loads(reply.body) == {"address": "2001:db8::1", "family": "ipv6"}
    assert "access-control-allow-origin" not in reply.headers
    # Behind a trusted proxy, the forwarded client; an IPv4-mapped peer is IPv4.
    forwarded = {"X-Forwarded-For": "2001:db8::7"}
    assert json.loads(call(app, "/api/myip", remote="127.0.0.1", headers=forwarded).body)["address"] == "2001:db8::7"
    assert json.loads(call(app, "/api/myip", remote="::ffff:192.0.2.3").body)["family"] == "ipv4"
