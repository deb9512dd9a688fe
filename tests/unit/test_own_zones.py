"""Users' own zones, the pure parts: where the parent is looked for, what counts as a delegation to the
service, and how checks move a zone between pending, served, its grace period and suspended."""

from __future__ import annotations

import pytest

from ddserver.config import load_config, parse_server
from ddserver.dns.delegation import ancestors, judge
from ddserver.errors import ConfigError
from ddserver.store.ownzones import Delegation, ZoneState, after_check, is_served, state_of
from ddserver.store.zones import Zone

NS = ("ns1.example.org", "ns2.example.org")


def test_the_parent_is_looked_for_closest_first() -> None:
    assert ancestors("a.dyn.example.com.") == ["dyn.example.com", "example.com", "com"]
    assert ancestors("example.com") == ["com"]


@pytest.mark.parametrize(
    ("found", "ok"),
    [
        (["ns1.example.org.", "NS2.example.org"], True),
        (["ns1.example.org"], True),  # one of the service's servers is enough
        (["ns1.example.org", "ns.elsewhere.net"], False),  # another server would answer too
        (["ns.elsewhere.net"], False),
        ([], False),
        (None, False),
    ],
)
def test_a_delegation_must_name_only_the_services_nameservers(found: list[str] | None, ok: bool) -> None:
    verdict = judge("dyn.example.com", found, NS)
    assert verdict.ok is ok
    assert bool(verdict.reason) is not ok
    if found and not ok:
        assert "ns.elsewhere.net" in verdict.reason and "ns1.example.org" in verdict.reason


def test_checks_move_a_zone_through_its_states() -> None:
    grace = 100
    pending = Delegation(approved=True)
    assert not is_served(pending, 0, grace)
    failed = after_check(pending, False, "no NS records", 10)
    assert failed.failing_since == 10 and failed.ok_at is None and not is_served(failed, 10, grace)
    good = after_check(failed, True, "", 20)
    assert (good.ok_at, good.failing_since, good.error) == (20, None, None)
    assert is_served(good, 20, grace)
    gone = after_check(good, False, "delegated elsewhere", 30)
    again = after_check(gone, False, "delegated elsewhere", 60)
    assert again.failing_since == 30 and again.ok_at == 20  # the grace period counts from the first failure
    assert is_served(again, 129, grace)
    assert not is_served(again, 130, grace)
    back = after_check(again, True, "", 200)
    assert is_served(back, 200, grace)
    # Not approved: never served, whatever the delegation.
    assert not is_served(Delegation(False, 20, 20), 20, grace)


def _zone(**values: object) -> Zone:
    base: dict[str, object] = dict(
        id=1, name="dyn.example.com", nameservers=NS, hostmaster="hostmaster.dyn.example.com", serial=1,
        refresh=1, retry=1, expire=1, minimum=1, zone_ttl=1, ttl=None, is_public=False, description="",
        rfc2136_server=None, rfc2136_transport="tcp", tsig_name=None, tsig_algorithm=None, tsig_secret=None,
        rfc2136_position=0, rfc2136_error=None, rfc2136_error_at=None, rfc2136_ok_at=None, created_at=0,
        owner_id=7, served=False,
    )  # fmt: skip
    base.update(values)
    return Zone(**base)  # type: ignore[arg-type]


def test_what_the_owner_sees() -> None:
    assert state_of(_zone(owner_id=None, served=True)) is ZoneState.ACTIVE
    assert state_of(_zone(approved=False)) is ZoneState.AWAITING_APPROVAL
    assert state_of(_zone()) is ZoneState.PENDING
    assert state_of(_zone(served=True, delegation_ok_at=5)) is ZoneState.ACTIVE
    assert state_of(_zone(served=True, delegation_ok_at=5, delegation_failing_since=9)) is ZoneState.GRACE
    assert state_of(_zone(served=False, delegation_ok_at=5, delegation_failing_since=9)) is ZoneState.SUSPENDED


def test_zone_settings(tmp_path) -> None:
    assert parse_server("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("2001:db8::1") == ("2001:db8::1", 53)
    config = load_config(env={"DDSERVER_ZONES_NAMESERVERS": "ns1.example.org, ns2.example.org"})
    assert config.zones.nameservers == NS and config.zones.max_per_user == 2 and not config.zones.approval
    with pytest.raises(ConfigError, match=r"\[zones\] delegation_resolver"):
        load_config(env={"DDSERVER_ZONES_DELEGATION_RESOLVER": "not a server:x"})
    with pytest.raises(ConfigError, match=r"\[zones\] nameservers"):
        load_config(env={"DDSERVER_ZONES_NAMESERVERS": "ns1..bad"})
