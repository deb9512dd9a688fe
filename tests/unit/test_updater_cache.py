"""The updater's host cache on each database dialect: a nochg is answered without a read, and what other
processes change (addresses, secrets, flags, rate limits, zones) is followed through the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ddserver import secrets
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import hosts, updates, users, zones
from ddserver.updater.app import create_app
from ddserver.updater.service import Updater
from tests import support
from tests.updater_support import ZONE, Site, call, host_row, make_site, updater_config

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


def _app(config: Config, db: Database, **values: Any):  # type: ignore[no-untyped-def]
    values.setdefault("host_cache", 1000)
    values.setdefault("host_cache_poll", 0.05)
    return create_app(updater_config(config, **values), db)


@pytest.fixture
def app(config: Config, db: Database, site: Site) -> Iterator[Any]:
    app = _app(config, db)
    yield app
    app.config["ddserver.updater"].close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The names of every host read the updater makes."""
    seen: list[list[str]] = []
    lookup = updates.lookup

    def counted(db: Database, names: Any, *args: Any, **kwargs: Any) -> updates.Lookup:
        seen.append(list(names))
        return lookup(db, names, *args, **kwargs)

    monkeypatch.setattr(updates, "lookup", counted)
    return seen


def _updater(app: Any) -> Updater:
    updater = app.config["ddserver.updater"]
    assert updater.cache is not None and updater.cache.wait_fresh(20)
    return updater


def _send(app: Any, site: Site, address: str, login: str = HOME, secret: str | None = None, **kw: Any) -> str:
    auth = (login, site.secrets[login] if secret is None else secret)
    return call(app, "/nic/update", {"hostname": login, "myip": address}, auth=auth, **kw).body


def _kept(app: Any, site: Site, address: str, login: str = HOME, **kw: Any) -> None:
    """Send nochg until the host is in the cache (after a write, once the feed has shown it)."""
    updater = app.config["ddserver.updater"]

    def kept() -> bool:
        assert _send(app, site, address, login, **kw) == f"nochg {address}\n"
        return updater.cache.get(login) is not None

    support.wait_until(kept, what=f"{login} in the cache")


def _forgotten(updater: Updater, name: str) -> None:
    assert updater.cache is not None
    support.wait_until(lambda: updater.cache.get(name) is None, what=f"the cache to forget {name}")


def test_nochg_is_answered_without_reading_the_database(app, site: Site, reads: list) -> None:  # type: ignore[no-untyped-def]
    _updater(app)
    assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"
    _kept(app, site, "198.51.100.1")
    before = len(reads)
    for _ in range(5):
        assert _send(app, site, "198.51.100.1") == "nochg 198.51.100.1\n"
    # Without hostname, the login's host; a change is written (the row lock checks what the cache held).
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=(HOME, site.secrets[HOME])).body.startswith("nochg")
    assert len(reads) == before
    assert _send(app, site, "198.51.100.2") == "good 198.51.100.2\n"
    # Kept as the write left it (its feed id is known: both databases here return inserted ids), so the next
    # nochg and the next change read nothing either; the feed's entry for this change does not evict it.
    assert _send(app, site, "198.51.100.2") == "nochg 198.51.100.2\n"
    assert _send(app, site, "198.51.100.3") == "good 198.51.100.3\n"
    updater = app.config["ddserver.updater"]
    polls = updater.cache.mark()
    support.wait_until(lambda: updater.cache.mark() > polls + 1, what="two polls")
    assert _send(app, site, "198.51.100.3") == "nochg 198.51.100.3\n"
    assert len(reads) == before
    assert host_row(app.config["ddserver.updater"].db, HOME)["ipv4"] == "198.51.100.3"
    # A wrong secret is never answered from the cache: it is read and counted.
    assert _send(app, site, "198.51.100.2", secret="wrong") == "badauth\n"
    assert len(reads) == before + 1


def test_changes_made_elsewhere_are_followed(app, config: Config, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    updater = _updater(app)
    other = _app(config, db)  # another updater process, as far as the database can tell
    try:
        assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"
        _kept(app, site, "198.51.100.1")
        assert _send(other, site, "198.51.100.7") == "good 198.51.100.7\n"
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"

        # The address set by hand (web interface, CLI).
        _kept(app, site, "198.51.100.1")
        hosts.set_addresses(db, site.home.id, ipv4="198.51.100.9")
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"

        # A new secret: the old one stops working, the new one works.
        _kept(app, site, "198.51.100.1")
        new = secrets.new_host_secret()
        hosts.set_secret_hash(db, site.home.id, secrets.hash_host_secret(new))
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1") == "badauth\n"
        assert _send(app, site, "198.51.100.1", secret=new) == "nochg 198.51.100.1\n"

        # Flagged, or its owner disabled: out of DNS and answered abuse.
        _kept(app, site, "198.51.100.1", secret=new)
        hosts.set_flags(db, site.home.id, blocked=True)
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1", secret=new) == "abuse\n"
        hosts.set_flags(db, site.home.id, blocked=False)
        _kept(app, site, "198.51.100.1", secret=new)
        users.set_flags(db, site.alice.id, is_disabled=True)
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1", secret=new) == "abuse\n"
        users.set_flags(db, site.alice.id, is_disabled=False)

        # Deleted.
        _kept(app, site, "198.51.100.1", secret=new)
        hosts.delete(db, site.home.id)
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1", secret=new) == "badauth\n"
    finally:
        other.config["ddserver.updater"].close()


def test_a_secret_replaced_before_the_cache_saw_it_writes_nothing(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    _updater(app)
    assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"
    _kept(app, site, "198.51.100.1")
    # Replaced behind the feed's back: the cache still holds the old hash, as it would until its next poll.
    new = secrets.new_host_secret()
    db.run(
        lambda tx: tx.execute(
            "UPDATE hosts SET secret_hash = ? WHERE id = ?", (secrets.hash_host_secret(new), site.home.id)
        )
    )
    # A change with the old secret reaches the row lock, which sees the new hash: nothing is written, and the
    # request, read again from the database, is refused.
    assert _send(app, site, "198.51.100.2") == "badauth\n"
    assert host_row(db, HOME)["ipv4"] == "198.51.100.1"
    assert _send(app, site, "198.51.100.2", secret=new) == "good 198.51.100.2\n"


def test_rate_limits_counted_elsewhere_are_followed(config: Config, site: Site, db: Database) -> None:
    app = _app(config, db, auth_failures_per_client=3, auth_failures_per_account=50)
    other = _app(config, db, auth_failures_per_client=3, auth_failures_per_account=50)
    try:
        updater = _updater(app)
        assert _send(app, site, "198.51.100.1", remote="192.0.2.66") == "good 198.51.100.1\n"
        _kept(app, site, "198.51.100.1", remote="192.0.2.66")
        for _ in range(3):
            assert _send(other, site, "198.51.100.1", secret="wrong", remote="192.0.2.66") == "badauth\n"
        assert updater.cache is not None
        support.wait_until(
            lambda: updater.cache.failures(["client:192.0.2.66"]), what="the cache to see the failures"
        )  # fmt: skip
        assert _send(app, site, "198.51.100.1", remote="192.0.2.66") == "abuse\n"
        assert _send(app, site, "198.51.100.1", remote="192.0.2.67") == "nochg 198.51.100.1\n"
        # Failures this process counts itself are known at once.
        for _ in range(3):
            assert _send(app, site, "198.51.100.1", secret="wrong", remote="192.0.2.68") == "badauth\n"
        assert _send(app, site, "198.51.100.1", remote="192.0.2.68") == "abuse\n"
    finally:
        app.config["ddserver.updater"].close()
        other.config["ddserver.updater"].close()


def test_a_zone_deleted_takes_its_hosts_out_of_the_cache(app, site: Site, db: Database) -> None:  # type: ignore[no-untyped-def]
    updater = _updater(app)
    assert _send(app, site, "198.51.100.1", login=OFFICE) == "good 198.51.100.1\n"
    _kept(app, site, "198.51.100.1", login=OFFICE)
    zones.delete(db, site.zone.id)
    _forgotten(updater, OFFICE)
    assert _send(app, site, "198.51.100.1", login=OFFICE) == "badauth\n"
