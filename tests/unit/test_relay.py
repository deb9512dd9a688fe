"""Relays: the pure core (request, answers, backoff, checks) and the outbox in the store on both databases
(pending in the same transaction as the address change, only the latest sent, leases, stop until edited)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from ddserver import relay
from ddserver.db import Database
from ddserver.errors import LimitReached, ValidationError
from ddserver.relay import Family, Verdict
from ddserver.store import hosts, relays, updates
from tests.updater_support import make_site

# -- the core -------------------------------------------------------------------------------------------


def test_request_carries_basic_auth_agent_hostname_and_myip() -> None:
    built = relay.request("https://members.dyndns.org/nic/update", "home.example.net", "bob", "s3:cret", "192.0.2.1")
    parts = urllib.parse.urlsplit(built.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "members.dyndns.org", "/nic/update")
    assert urllib.parse.parse_qs(parts.query) == {"hostname": ["home.example.net"], "myip": ["192.0.2.1"]}
    assert built.headers["Authorization"] == "Basic " + base64.b64encode(b"bob:s3:cret").decode()
    assert built.headers["User-Agent"].startswith("ddserver - relay - ")
    assert "s3:cret" not in built.url
    # A query of the URL's own is kept; the comma list stays readable.
    built = relay.request("http://x.example/nic/update?system=dyndns", "h.example", "u", "p", "192.0.2.1,2001:db8::1")
    assert built.url == "http://x.example/nic/update?system=dyndns&hostname=h.example&myip=192.0.2.1,2001:db8::1"


def test_addresses_within_the_family() -> None:
    assert relay.addresses("192.0.2.1", "2001:DB8:0::1", Family.BOTH) == "192.0.2.1,2001:db8::1"
    assert relay.addresses("192.0.2.1", "2001:db8::1", Family.IPV4) == "192.0.2.1"
    assert relay.addresses("192.0.2.1", "2001:db8::1", Family.IPV6) == "2001:db8::1"
    assert relay.addresses(None, None, Family.BOTH) == ""
    assert relay.addresses(None, "2001:db8::1", Family.IPV4) == ""


@pytest.mark.parametrize(
    ("status", "body", "verdict", "code"),
    [
        (200, b"good 192.0.2.1\n", Verdict.DONE, "good"),
        (200, b"nochg 192.0.2.1", Verdict.DONE, "nochg"),
        (401, b"badauth\n", Verdict.STOP, "badauth"),
        (401, b"", Verdict.STOP, "badauth"),
        (200, b"nohost\n", Verdict.STOP, "nohost"),
        (200, b"abuse\n", Verdict.STOP, "abuse"),
        (200, b"!donator\n", Verdict.STOP, "!donator"),
        (200, b"911\n", Verdict.RETRY, "911"),
        (200, b"dnserr\n", Verdict.RETRY, "dnserr"),
        (502, b"<html>Bad gateway</html>", Verdict.RETRY, "http-502"),
        (200, b"", Verdict.RETRY, "http-200"),
        (404, b"not found", Verdict.STOP, "http-404"),
    ],
)
def test_answers(status: int, body: bytes, verdict: Verdict, code: str) -> None:
    read = relay.outcome(status, body)
    assert (read.verdict, read.code) == (verdict, code)


def test_a_redirect_names_the_new_url_without_credentials() -> None:
    read = relay.redirected(301, "https://u:p@members.example/nic/update?x=1")
    assert read.verdict is Verdict.STOP
    assert read.detail == "redirected to https://members.example/nic/update: use that URL"


def test_backoff_doubles_up_to_the_most_and_waits_long_after_911() -> None:
    assert [relay.backoff(n, "error", 60, 3600) for n in (1, 2, 3, 7, 50)] == [60, 120, 240, 3600, 3600]
    assert relay.backoff(1, "911", 60, 3600) == 1800
    assert relay.backoff(1, "dnserr", 0.2, 1) == 1


@pytest.mark.parametrize(
    "url",
    ["", "ftp://x.example/", "https:///nic/update", "https://u:p@x.example/nic/update", "https://x.example/#a",
     "https://x.example/a b", "https://x.example:99999/", "https://x.example/" + "a" * 600],
)  # fmt: skip
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        relay.check_url(url)


def test_other_checks() -> None:
    assert relay.check_url(" https://members.dyndns.org/nic/update ") == "https://members.dyndns.org/nic/update"
    assert relay.check_remote_name("Home.Example.NET.") == "home.example.net"
    for bad in ("home", "-x.example"):
        with pytest.raises(ValidationError):
            relay.check_remote_name(bad)
    for bad in ("", "a:b", "a\nb"):
        with pytest.raises(ValidationError):
            relay.check_username(bad)
    for bad in ("", "x\r\n", "x" * 501):
        with pytest.raises(ValidationError):
            relay.check_secret(bad)
    assert relay.check_family("") is Family.BOTH
    with pytest.raises(ValidationError):
        relay.check_family("ipv5")


# -- the outbox in the store ------------------------------------------------------------------------------


def _add(db: Database, host_id: int, limit: int = 3) -> relays.Relay:
    return relays.add(
        db,
        host_id,
        url="https://third.example/nic/update",
        remote_name="home.third.example",
        username="bob",
        sealed_secret="sealed1:x:y",
        family="both",
        limit=limit,
    )


def test_an_address_change_makes_the_relays_pending_and_only_the_latest_is_sent(db: Database) -> None:
    site = make_site(db)
    added = _add(db, site.home.id)
    other = _add(db, site.other.id)
    # New: pending, with no address to send yet.
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None and (job.ipv4, job.ipv6) == (None, None)
    assert relays.finish(db, job, "w1", done=True)
    assert not relays.get(db, added.id).pending
    # Two changes through the updater's group commit, one through the interface's path: one claim sends the last.
    host = updates.read_hosts(db, [site.home.name])[site.home.name]
    updates.apply_many(db, [updates.Update(host, "192.0.2.1", None, True, False)])
    updates.apply_many(db, [updates.Update(host, "192.0.2.2", None, True, False)])
    hosts.set_addresses(db, site.home.id, ipv6="2001:db8::2")
    assert relays.due(db, 10) == sorted([added.id, other.id])
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None and (job.ipv4, job.ipv6) == ("192.0.2.2", "2001:db8::2")
    assert relays.finish(db, job, "w1", done=True, result="good", sent="192.0.2.2,2001:db8::2")
    done = relays.get(db, added.id)
    assert (done.pending, done.last_result, done.last_sent) == (False, "good", "192.0.2.2,2001:db8::2")
    # Settled relays have no due time: the workers' look for due relays reads none of them.
    assert done.due_at is None
    assert relays.due(db, 10) == [other.id]
    # A change of nothing (nochg) or of the wildcard alone leaves the relay settled.
    host = updates.read_hosts(db, [site.home.name])[site.home.name]
    updates.apply_many(db, [updates.Update(host, "192.0.2.2", None, True, False, wildcard=True)])
    assert not relays.get(db, added.id).pending


def test_a_change_during_the_try_stays_pending(db: Database) -> None:
    site = make_site(db)
    added = _add(db, site.home.id)
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.1")
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.9")
    assert relays.finish(db, job, "w1", done=True, result="good", sent="192.0.2.1")
    assert relays.get(db, added.id).pending and relays.get(db, added.id).due_at == 0
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None and job.ipv4 == "192.0.2.9"


def test_leases(db: Database) -> None:
    site = make_site(db)
    added = _add(db, site.home.id)
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None
    # Held: nobody else takes it, and it is not listed as due.
    assert relays.claim(db, added.id, "w2", 60) is None
    assert relays.due(db, 10) == []
    # A lease that ran out is taken over; the old holder's result is then not filed.
    db.run(lambda tx: tx.execute("UPDATE host_relays SET lease_until = 1 WHERE id = ?", (added.id,)))
    taken = relays.claim(db, added.id, "w2", 60)
    assert taken is not None
    assert not relays.finish(db, job, "w1", done=True, result="good")
    assert relays.get(db, added.id).last_result is None
    relays.release_all(db, "w2")
    assert relays.due(db, 10) == [added.id]


def test_failures_wait_and_a_stop_lasts_until_the_relay_is_edited(db: Database) -> None:
    site = make_site(db)
    added = _add(db, site.home.id)
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.1")
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None
    relays.finish(db, job, "w1", done=False, retry_in=3600, result="error", detail="timed out", sent="192.0.2.1")
    waiting = relays.get(db, added.id)
    assert (waiting.pending, waiting.attempts, waiting.last_detail) == (True, 1, "timed out")
    assert relays.due(db, 10) == [] and relays.claim(db, added.id, "w1", 60) is None
    # A change during the wait does not hasten the next try.
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.2")
    assert relays.due(db, 10) == [] and relays.get(db, added.id).due_at == waiting.due_at
    db.run(lambda tx: tx.execute("UPDATE host_relays SET due_at = 0 WHERE id = ?", (added.id,)))
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None and job.attempts == 1
    relays.finish(db, job, "w1", done=False, stop=True, result="badauth")
    stopped = relays.get(db, added.id)
    assert stopped.stopped and not stopped.pending and stopped.attempts == 2 and stopped.due_at is None
    # Further changes are not sent to a stopped relay...
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.3")
    assert relays.due(db, 10) == [] and relays.get(db, added.id).due_at is None
    # ...until it is edited: then at once, with the settings kept where not given.
    relays.edit(db, added.id, url=added.url, remote_name="h.third.example", username="bob", family="ipv4")
    edited = relays.get(db, added.id)
    assert (edited.stopped, edited.pending, edited.attempts, edited.family) == (False, True, 0, "ipv4")
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None and job.sealed_secret == "sealed1:x:y" and job.ipv4 == "192.0.2.3"


def test_an_edit_during_a_try_is_not_stopped_by_its_answer(db: Database) -> None:
    site = make_site(db)
    added = _add(db, site.home.id)
    hosts.set_addresses(db, site.home.id, ipv4="192.0.2.1")
    job = relays.claim(db, added.id, "w1", 60)
    assert job is not None
    relays.edit(db, added.id, url=added.url, remote_name="h.third.example", username="carol", family="both")
    relays.finish(db, job, "w1", done=False, stop=True, result="badauth")
    assert not relays.get(db, added.id).stopped


def test_the_limit_and_the_host_going(db: Database) -> None:
    site = make_site(db)
    _add(db, site.home.id, limit=2)
    _add(db, site.home.id, limit=2)
    with pytest.raises(LimitReached):
        _add(db, site.home.id, limit=2)
    assert len(relays.for_host(db, site.home.id)) == 2
    hosts.delete(db, site.home.id)
    assert relays.for_host(db, site.home.id) == []
