"""Users' own zones against the real peers: the store on SQLite and MariaDB (what DNS reads of a zone that is
pending, served, in its grace period or suspended), the delegation check against BIND acting as the parent
``example.com``, and a host of a user's zone through PowerDNS before and after its delegation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver import cli, secrets
from ddserver.config import ZonesSection
from ddserver.db import Database
from ddserver.errors import Conflict, LimitReached, ValidationError
from ddserver.interface import delegation
from ddserver.store import changes, dnsdata, hosts, ownzones, records, retention, users, zones
from ddserver.store import recursor as recursor_store
from tests import support
from tests.named import SERVICE_NS, NamedServer, parent, set_delegation  # noqa: F401 (fixture)
from tests.pdns import start_pdns

ZONE = "dyn.example.com"
HOSTMASTER = f"hostmaster.{ZONE}"


def _host(db: Database, user_id: int, name: str, **kw: object) -> hosts.Host:
    return hosts.add(db, user_id, name, secrets.hash_host_secret("s"), default_limit=10, **kw)  # type: ignore[arg-type]


def _in_dns(db: Database, name: str) -> dict[str, bool]:
    """Where the name's zone and host are seen by the readers of DNS data."""
    zone_names = {z.name for z in db.read(recursor_store.zones)}
    return {
        "zone": ZONE in zone_names,
        "load": name in {row[0] for row in recursor_store.iter_all_hosts(db)},
        "named": bool(db.read(lambda tx: dnsdata.hosts_named(tx, [name]))),
        "records": any(row[0] == name for row in db.read(recursor_store.all_records)),
    }


def test_a_users_zone_is_in_dns_only_while_delegated(db: Database) -> None:
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")
    bob = users.add(db, "bob", "bob@example.org", password_hash="x")
    admin = users.add(db, "root", "root@example.org", password_hash="x", is_admin=True)
    zone = ownzones.add(db, alice.id, ZONE, SERVICE_NS, HOSTMASTER, limit=2, approved=True)
    assert (zone.owner_id, zone.served, zone.is_public) == (alice.id, False, False)
    # Pending: nobody but an admin may add hosts, and what an admin adds stays out of DNS.
    with pytest.raises(ValidationError):
        _host(db, alice.id, f"early.{ZONE}", ipv4="192.0.2.9")
    assert ZONE not in {z.name for z in zones.usable_by(db, alice.id, False)}
    early = _host(db, admin.id, f"early.{ZONE}", ipv4="192.0.2.9")
    records.add(db, early.id, f"early.{ZONE}", "TXT", "x")
    assert _in_dns(db, f"early.{ZONE}") == {"zone": False, "load": False, "named": False, "records": False}

    before = changes.last_id(db)
    zone = ownzones.record_check(db, zone.id, True, "", grace=100, at=1000)
    assert zone.served and ownzones.state_of(zone) is ownzones.ZoneState.ACTIVE
    assert [c.name for c in changes.since(db, before)] == [ZONE]  # followers add the whole zone
    assert _in_dns(db, f"early.{ZONE}") == {"zone": True, "load": True, "named": True, "records": True}
    home = _host(db, alice.id, f"home.{ZONE}", ipv4="192.0.2.1")

    # The owner lets bob add hosts (by name), then stops it; bob's host stays.
    ownzones.grant(db, zone.id, "bob")
    with pytest.raises(Conflict):
        ownzones.grant(db, zone.id, "bob")
    assert ZONE in {z.name for z in zones.usable_by(db, bob.id, False)}
    bobs = _host(db, bob.id, f"bob.{ZONE}", ipv4="192.0.2.2")
    assert ownzones.grantees(db, zone.id) == [(bob.id, "bob")]
    assert ownzones.revoke(db, zone.id, bob.id)
    assert ZONE not in {z.name for z in zones.usable_by(db, bob.id, False)}

    # The delegation goes: served through the grace period, then suspended; back when it returns.
    zone = ownzones.record_check(db, zone.id, False, "gone", grace=100, at=2000)
    assert zone.served and ownzones.state_of(zone) is ownzones.ZoneState.GRACE and zone.delegation_error == "gone"
    zone = ownzones.record_check(db, zone.id, False, "gone", grace=100, at=2100)
    assert not zone.served and ownzones.state_of(zone) is ownzones.ZoneState.SUSPENDED
    assert _in_dns(db, home.name) == {"zone": False, "load": False, "named": False, "records": False}
    zone = ownzones.record_check(db, zone.id, True, "", grace=100, at=2200)
    assert zone.served and _in_dns(db, home.name)["load"]

    # The limit, and names that overlap a zone of the service.
    zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    for name in (ZONE, f"a.{ZONE}", "example.com", "x.dyn.example.org", "example.org"):
        with pytest.raises(Conflict):
            ownzones.add(db, alice.id, name, SERVICE_NS, HOSTMASTER, limit=2, approved=True)
    ownzones.add(db, alice.id, "second.example.net", SERVICE_NS, HOSTMASTER, limit=2, approved=True)
    with pytest.raises(LimitReached):
        ownzones.add(db, alice.id, "third.example.net", SERVICE_NS, HOSTMASTER, limit=2, approved=True)

    # Awaiting approval: not served even when delegated, until approved.
    waiting = ownzones.add(db, bob.id, "bob.example.net", SERVICE_NS, HOSTMASTER, limit=2, approved=False)
    waiting = ownzones.record_check(db, waiting.id, True, "", grace=100)
    assert not waiting.served and [z.name for z in ownzones.awaiting_approval(db)] == ["bob.example.net"]
    assert ownzones.approve(db, waiting.id, grace=100).served

    # Deleting alice's account deletes her zones with every host in them, bob's too.
    before = changes.last_id(db)
    retention.delete_account(db, alice.id)
    assert [z.name for z in ownzones.all_owned(db)] == ["bob.example.net"]
    assert {h.name for h in hosts.search(db, limit=100)[0]} == set()
    assert bobs.name not in {row[0] for row in recursor_store.iter_all_hosts(db)}
    assert ZONE in {c.name for c in changes.since(db, before)}


def test_the_check_asks_the_parent(db: Database, parent: NamedServer) -> None:  # noqa: F811
    settings = ZonesSection(nameservers=SERVICE_NS, delegation_resolver=(parent.server,), check_timeout=2.0)
    assert delegation.check(settings, ZONE).ok
    elsewhere = delegation.check(settings, "other.example.com")
    assert not elsewhere.ok and "ns.elsewhere.example.net" in elsewhere.reason
    missing = delegation.check(settings, "missing.example.com")
    assert not missing.ok and "no NS records" in missing.reason
    # Only part of the service's nameservers is enough; a foreign one beside them is not.
    set_delegation(parent, "other.example.com", (SERVICE_NS[0],))
    assert delegation.check(settings, "other.example.com").ok
    set_delegation(parent, "other.example.com", (SERVICE_NS[0], "ns.elsewhere.example.net"))
    assert not delegation.check(settings, "other.example.com").ok
    # A resolver that does not answer: the owner is told, nothing is decided on it.
    silent = ZonesSection(nameservers=SERVICE_NS, delegation_resolver=(f"127.0.0.1:{support.free_port()}",))
    silent = ZonesSection(**{**silent.__dict__, "check_timeout": 0.5})
    unanswered = delegation.check(silent, ZONE)
    assert not unanswered.ok and "could not be checked" in unanswered.reason


def test_a_users_zone_answers_through_powerdns_once_delegated(parent: NamedServer, tmp_path: Path) -> None:  # noqa: F811
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    users.add(db, "alice", "alice@example.org", password_hash="x")
    name = "other.example.com"  # the parent delegates it elsewhere at first
    config = support.write_config_file(
        tmp_path / "ddserver.conf",
        url,
        "[recursor]\npoll_interval = 0.1\n\n[zones]\n"
        f"nameservers = {', '.join(SERVICE_NS)}\ndelegation_resolver = {parent.server}\ngrace_period = 0\n",
    )

    def ddserver(*args: str) -> None:
        assert cli.main(["--config", str(config), *args]) == 0

    ddserver("zone", "add", name, "--owner", "alice")
    zone = zones.get(db, name)
    assert not zone.served and "ns.elsewhere.example.net" in (zone.delegation_error or "")
    admin = users.add(db, "root", "root@example.org", password_hash="x", is_admin=True)
    _host(db, admin.id, f"home.{name}", ipv4="192.0.2.1")
    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=False) as pdns:
        assert pdns.rcode(f"home.{name}") == "REFUSED"
        assert pdns.rcode(name, "SOA") == "REFUSED"

        set_delegation(parent, name, SERVICE_NS)
        ddserver("zone", "check-delegations")
        support.wait_until(lambda: pdns.records(f"home.{name}") == ["192.0.2.1"], 10, what="the delegated zone")
        assert sorted(pdns.records(name, "NS")) == [f"{ns}." for ns in SERVICE_NS]
        # The owner adds a host like in any zone.
        _host(db, users.get_by_name(db, "alice").id, f"nas.{name}", ipv4="192.0.2.2")
        support.wait_until(lambda: pdns.records(f"nas.{name}") == ["192.0.2.2"], 10, what="the owner's host")

        set_delegation(parent, name, ())
        ddserver("zone", "check-delegations")  # no grace here: suspended at once
        support.wait_until(lambda: pdns.rcode(f"home.{name}") == "REFUSED", 10, what="the suspended zone to go")
        assert "does not delegate" in (zones.get(db, name).delegation_error or "")
