"""The updater's host cache on each database dialect: a nochg is answered without a read, and what other
processes change (addresses, secrets, flags, rate limits, zones) is followed through the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ddserver import secrets
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import hosts, updates, users, zones
from ddserver.updater.app import create_app
from ddserver.updater.hostcache import HostCache
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


def _followed(updater: Updater, name: str, check: Callable[[updates.HostState], bool]) -> None:
    """Wait until the cache no longer holds ``name`` as it was: read again (``check`` holds) or forgotten."""
    assert updater.cache is not None

    def followed() -> bool:
        host = updater.cache.get(name)
        return host is None or check(host)

    support.wait_until(followed, what=f"the cache to follow {name}")


def _forgotten(updater: Updater, name: str) -> None:
    _followed(updater, name, lambda host: False)


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
        _followed(updater, HOME, lambda h: h.ipv4 == "198.51.100.7")
        assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"

        # The address set by hand (web interface, CLI).
        _kept(app, site, "198.51.100.1")
        hosts.set_addresses(db, site.home.id, ipv4="198.51.100.9")
        _followed(updater, HOME, lambda h: h.ipv4 == "198.51.100.9")
        assert _send(app, site, "198.51.100.1") == "good 198.51.100.1\n"

        # A new secret: the old one stops working, the new one works.
        _kept(app, site, "198.51.100.1")
        new = secrets.new_host_secret()
        hosts.set_secret_hash(db, site.home.id, secrets.hash_host_secret(new))
        _forgotten(updater, HOME)  # a new secret empties every cache
        assert _send(app, site, "198.51.100.1") == "badauth\n"
        assert _send(app, site, "198.51.100.1", secret=new) == "nochg 198.51.100.1\n"

        # Flagged, or its owner disabled: out of DNS and answered abuse.
        _kept(app, site, "198.51.100.1", secret=new)
        hosts.set_flags(db, site.home.id, blocked=True)
        _followed(updater, HOME, lambda h: h.blocked)
        assert _send(app, site, "198.51.100.1", secret=new) == "abuse\n"
        hosts.set_flags(db, site.home.id, blocked=False)
        _kept(app, site, "198.51.100.1", secret=new)
        users.set_flags(db, site.alice.id, is_disabled=True)
        _followed(updater, HOME, lambda h: h.user_disabled)
        assert _send(app, site, "198.51.100.1", secret=new) == "abuse\n"
        users.set_flags(db, site.alice.id, is_disabled=False)

        # Deleted.
        _kept(app, site, "198.51.100.1", secret=new)
        hosts.delete(db, site.home.id)
        _forgotten(updater, HOME)
        assert _send(app, site, "198.51.100.1", secret=new) == "badauth\n"
    finally:
        other.config["ddserver.updater"].close()


def test_hosts_changed_elsewhere_are_read_again_in_one_query(  # type: ignore[no-untyped-def]
    app, config: Config, site: Site, db: Database, reads: list
) -> None:
    updater = _updater(app)
    assert updater.cache is not None
    other = _app(config, db)
    try:
        for name in (HOME, OFFICE):
            assert _send(app, site, "198.51.100.1", login=name) == "good 198.51.100.1\n"
            _kept(app, site, "198.51.100.1", login=name)
        refreshed: list[list[str]] = []
        read_hosts = updates.read_hosts

        def counted(db: Database, names: Any) -> dict[str, updates.HostState]:
            refreshed.append(sorted(names))
            return read_hosts(db, names)

        # Changed by another process: this one reads both hosts again after its next poll, in one query, and
        # answers their next requests from memory.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(updates, "read_hosts", counted)
            for name in (HOME, OFFICE):
                assert _send(other, site, "198.51.100.7", login=name) == "good 198.51.100.7\n"
            before = len(reads)  # the other process's reads
            for name in (HOME, OFFICE):
                support.wait_until(
                    lambda name=name: getattr(updater.cache.get(name), "ipv4", None) == "198.51.100.7",
                    what=f"{name} read again",
                )
            for name in (HOME, OFFICE):
                assert _send(app, site, "198.51.100.7", login=name) == "nochg 198.51.100.7\n"
            assert _send(app, site, "198.51.100.8") == "good 198.51.100.8\n"
            assert len(reads) == before
        assert sorted(name for names in refreshed for name in names) == sorted([HOME, OFFICE])
        assert host_row(db, HOME)["ipv4"] == "198.51.100.8"
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


def test_failures_counted_anywhere_never_refuse_the_right_secret(config: Config, site: Site, db: Database) -> None:
    app = _app(config, db, auth_failures_per_client=3, auth_failures_per_account=5)
    other = _app(config, db, auth_failures_per_client=3, auth_failures_per_account=5)
    try:
        assert _send(app, site, "198.51.100.1", remote="192.0.2.66") == "good 198.51.100.1\n"
        _kept(app, site, "198.51.100.1", remote="192.0.2.66")
        # Failures from the router's address and from others, counted by this process and by another.
        for updater in (other, app):
            for remote in ("192.0.2.66", *(f"192.0.2.{n}" for n in range(100, 110))):
                for _ in range(4):
                    _send(updater, site, "198.51.100.1", secret="wrong", remote=remote)
        # The right secret is answered, from the cache, from any address.
        for remote in ("192.0.2.66", "192.0.2.100", "192.0.2.200"):
            _kept(app, site, "198.51.100.1", remote=remote)
        # Wrong ones are answered abuse past the client's limit, badauth before.
        assert _send(app, site, "198.51.100.1", secret="wrong", remote="192.0.2.66") == "abuse\n"
        assert _send(app, site, "198.51.100.1", secret="wrong", remote="192.0.2.201") == "badauth\n"
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


def test_a_refresh_never_overrides_what_this_process_writes(  # type: ignore[no-untyped-def]
    db: Database, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = HostCache(db, size=100, poll_interval=10)

    def held() -> None:
        cache.poll()  # a name the last poll dropped is taken again from the next one on
        cache.put(updates.read_hosts(db, [HOME])[HOME], cache.mark())
        assert cache.get(HOME) is not None

    try:
        cache.poll()
        held()
        # Changed elsewhere while a write of this process is under way: not read back over it. (Two writes of
        # the host, the first one over and kept, the second under way.)
        first, second = cache.writing(HOME), cache.writing(HOME)
        newest = db.read(lambda tx: tx.scalar("SELECT MAX(id) FROM changes"))
        cache.written(HOME, first, updates.read_hosts(db, [HOME])[HOME], newest)
        assert cache.get(HOME) is not None
        hosts.set_addresses(db, site.home.id, ipv4="198.51.100.7")
        cache.poll()
        assert cache.get(HOME) is None
        cache.written(HOME, second)

        # A request that writes the host while the poll reads it wins: what the poll read is not kept.
        held()
        hosts.set_addresses(db, site.home.id, ipv4="198.51.100.8")
        read_hosts = updates.read_hosts

        def racing(db: Database, names: Any) -> dict[str, updates.HostState]:
            found = read_hosts(db, names)
            cache.written(HOME, cache.writing(HOME))
            return found

        monkeypatch.setattr(updates, "read_hosts", racing)
        cache.poll()
        assert cache.get(HOME) is None
        monkeypatch.undo()

        # Otherwise the change is read back.
        held()
        hosts.set_addresses(db, site.home.id, ipv4="198.51.100.9")
        cache.poll()
        host = cache.get(HOME)
        assert host is not None and host.ipv4 == "198.51.100.9"
    finally:
        cache.stop()
