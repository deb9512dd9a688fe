"""Loads the zone index from the database and keeps it current by following the change feed.

Runs in its own thread. Lookups read ``follower.index`` without locks: each change replaces whole values.
When the database goes away the index stays as it is and the follower retries with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ddserver.db import Database
from ddserver.dns import zoneindex
from ddserver.dns.zoneindex import ZoneIndex
from ddserver.errors import DatabaseError
from ddserver.store import recursor as store
from ddserver.store.changes import Change, FeedCursor, FeedPruned

logger = logging.getLogger(__name__)

#: Changes read per poll.
BATCH = 5000
MAX_BACKOFF = 5.0
#: Names kept for a purge that failed; beyond that, whole zones are purged once PowerDNS answers again.
MAX_UNPURGED = 10000
#: Seconds after a purge when the same names are purged once more. PowerDNS stores a backend's answer in
#: its caches after reading it: an answer computed just before a change was applied, still on its way when
#: the purge ran, would otherwise be served for a whole cache TTL (seen with a busy database and CPU).
REPURGE_AFTER = 0.5


@dataclass
class PurgeList:
    """Names whose cached answers are stale: exact names, and names purged with everything below them."""

    exact: set[str] = field(default_factory=set)
    subtree: set[str] = field(default_factory=set)
    #: A zone was added or deleted: PowerDNS's zone cache must be refreshed too.
    zones_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.exact or self.subtree or self.zones_changed)

    def add(self, other: PurgeList) -> None:
        self.exact |= other.exact
        self.subtree |= other.subtree
        self.zones_changed = self.zones_changed or other.zones_changed

    def size(self) -> int:
        return len(self.exact) + len(self.subtree)


@dataclass
class FollowerStats:
    reloads: int = 0
    changes_applied: int = 0
    last_change_id: int = 0
    #: Seconds between the last applied change's commit and its application.
    change_lag: float = 0.0
    db_up: bool = True
    load_seconds: float = 0.0
    errors: int = 0


class Follower:
    """Holds the current index and follows the feed.

    :param purge: called with the stale names after each applied batch (may be None); returning False
        (PowerDNS could not be told) keeps the names for the next try.
    :param retention: the feed's retention in seconds: a follower that has not read it for longer reloads.
    :param repurge_after: seconds after which purged names are purged again (0: never).
    """

    def __init__(
        self,
        db: Database,
        *,
        default_ttl: int = 60,
        poll_interval: float = 0.2,
        retention: float = 86400,
        purge: Callable[[PurgeList], bool | None] | None = None,
        repurge_after: float = REPURGE_AFTER,
    ) -> None:
        self.db = db
        self.default_ttl = default_ttl
        self.poll_interval = poll_interval
        self.retention = retention
        self.purge = purge
        #: Names applied but not purged yet (the purge failed): retried after each poll.
        self.unpurged = PurgeList()
        self.repurge_after = repurge_after
        #: Names purged once, with when they are due again (oldest first).
        self._repurge: deque[tuple[float, PurgeList]] = deque()
        self.index: ZoneIndex | None = None
        #: Bumped after every load and applied batch: cached answers from an older generation are stale.
        self.generation = 0
        self.loaded = threading.Event()
        self.stats = FollowerStats()
        self._cursor = FeedCursor()
        self._last_read = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> ZoneIndex:
        """Read everything and make it the current index.

        :raises DatabaseError: when the database cannot be read (the old index, if any, stays).
        """
        started = time.monotonic()
        # The position first: what changes while the index is read is applied by the next poll.
        cursor = FeedCursor.at_newest(self.db)
        newest = cursor.high
        zone_rows = self.db.read(store.zones)
        index = zoneindex.build(
            zone_rows, store.iter_all_hosts(self.db), self.db.read(store.all_records), self.default_ttl
        )
        index.sync_chains()
        self._cursor = cursor
        self._last_read = time.time()
        self.index = index
        self.generation += 1
        self.stats.reloads += 1
        self.stats.last_change_id = newest
        self.stats.load_seconds = time.monotonic() - started
        self.loaded.set()
        logger.info(
            "loaded %d zones, %d hosts in %.2f s (feed at %d)",
            len(index.zones),
            len(index.hosts),
            self.stats.load_seconds,
            newest,
        )
        return index

    def adopt(self, index: ZoneIndex, cursor: FeedCursor, created: float) -> None:
        """Take an index read from a snapshot; the next poll catches up from its feed position (or loads in
        full when the snapshot is older than the feed's retention, or the feed is not the one it was read
        from).

        It is not published (``loaded``) until the caller has caught up and sets ``loaded``.
        """
        index.sync_chains()
        self._cursor = cursor
        self._last_read = created
        self.index = index
        self.generation += 1
        self.stats.last_change_id = cursor.high

    def position(self) -> tuple[int, list[int]]:
        """The newest change id applied and the ids below it still awaited."""
        return self._cursor.position()

    @property
    def cursor(self) -> FeedCursor:
        """The feed position the index is at (for snapshots)."""
        return self._cursor

    def wait_index(self, timeout: float) -> ZoneIndex | None:
        """The published index, waiting up to ``timeout`` seconds for the first load."""
        if not self.loaded.is_set() and not self.loaded.wait(timeout):
            return None
        return self.index

    # -- following --------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read and apply what changed since the last poll.

        The feed position moves only once the changes are applied: a batch that fails (the database went
        away between reading the feed and the names) is read again by the next poll, never skipped.

        :returns: how many changes were applied.
        :raises DatabaseError: when the database cannot be read.
        """
        if self.index is None or time.time() - self._last_read > self.retention:
            if self.index is not None:
                logger.warning("the change feed was not read for longer than its retention: reloading in full")
            self._reload()
            return 0
        try:
            rows, cursor = self._cursor.read(self.db, BATCH)
        except FeedPruned as exc:
            logger.warning("%s: reloading in full", exc)
            self._reload()
            return 0
        if rows:
            try:
                stale = self.apply(rows)
            except DatabaseError:
                raise  # the position stays: the next poll reads these changes again
            except Exception:
                logger.exception("applying changes %d to %d failed: reloading in full", rows[0].id, rows[-1].id)
                self._cursor, self._last_read = cursor, time.time()
                self._reload()
                return 0
            finally:
                self.generation += 1
            self.unpurged.add(stale)
        self._cursor, self._last_read = cursor, time.time()
        if rows:
            self.stats.changes_applied += len(rows)
            self.stats.last_change_id = cursor.high
            self.stats.change_lag = max(0.0, time.time() - rows[-1].created_at)
        self.flush_purges()
        return len(rows)

    def _reload(self) -> None:
        """A full load replacing the current index: every name may have changed, so every zone, old and
        new, is purged from PowerDNS's caches with all its names."""
        old = set(self.index.zones) if self.index is not None else set()
        index = self.load()
        if old:
            self.unpurged.add(PurgeList(subtree=old | set(index.zones), zones_changed=True))
            self.flush_purges()

    def flush_purges(self) -> None:
        """Purge the names applied but not purged yet, with the names purged before that are due again;
        kept for the next poll when PowerDNS cannot be told now (a purge that fails is retried, not
        forgotten)."""
        now = time.monotonic()
        due = PurgeList()
        while self._repurge and self._repurge[0][0] <= now:
            due.add(self._repurge.popleft()[1])
        if not self.unpurged and not due:
            return
        if self.purge is None:
            self.unpurged = PurgeList()
            return
        index = self.index
        if self.unpurged.size() > MAX_UNPURGED and index is not None:
            # PowerDNS has been unreachable for long: purge whole zones rather than an ever longer list.
            self.unpurged = PurgeList(subtree=set(index.zones), zones_changed=self.unpurged.zones_changed)
        fresh = self.unpurged
        batch = PurgeList()
        batch.add(fresh)
        batch.add(due)
        try:
            done = self.purge(batch)
        except Exception as exc:  # noqa: BLE001 - a purge failure must not stop following
            logger.warning("cache purge failed: %s", exc)
            done = False
        if done is False:
            fresh.add(due)  # tried again with the next poll, and purged once more after that
            return
        self.unpurged = PurgeList()
        if fresh and self.repurge_after > 0:
            self._repurge.append((now + self.repurge_after, fresh))

    def apply(self, rows: Iterable[Change]) -> PurgeList:
        """Re-read the names these changes touched and put their current state into the index."""
        index = self.index
        assert index is not None
        zone_ids: set[int] = set()
        reload_zones: set[int] = set()
        names: set[str] = set()
        stale = PurgeList()
        for change in rows:
            zone_ids.add(change.zone_id)
            if change.name == "*":
                reload_zones.add(change.zone_id)
            elif change.name == change.zone:
                stale.subtree.add(change.zone)
                if change.zone not in index.zones:
                    reload_zones.add(change.zone_id)
            else:
                names.add(change.name)
        for name in names:
            stale.subtree.add(name)
        # Hosts whose records sit at a changed name (an _acme-challenge name below the host, say).
        hosts = set(names)
        for name in names:
            hosts.update(index.host_of_owner(name))

        def read(tx):  # type: ignore[no-untyped-def]
            zone_rows = store.zones(tx, zone_ids)
            hosts.update(store.hosts_owning(tx, names))
            host_rows, record_rows = store.host_rows(tx, hosts)
            zone_data = {zid: (store.zone_hosts(tx, zid), store.zone_records(tx, zid)) for zid in reload_zones}
            return zone_rows, host_rows, record_rows, zone_data

        zone_rows, host_rows, record_rows, zone_data = self.db.read(read)
        # Names whose existence may change (NSEC3 chains): the hosts, their records' owners before and after.
        touched = set(hosts) | {owner for host in hosts for owner in index.owners.get(host, ())}
        found = {row.id for row in zone_rows}
        for zone_id in zone_ids - found:
            gone = index.zones_by_id.get(zone_id)
            if gone is not None:
                logger.info("zone %s is gone", gone.name)
                stale.subtree.add(gone.name)
                stale.zones_changed = True
                index.drop_zone(gone.name)
        for row in zone_rows:
            if row.name not in index.zones:
                logger.info("zone %s is new", row.name)
                stale.zones_changed = True
            index.set_zone(row)
            stale.exact.add(row.name)
        for zone_id, (zone_hosts, zone_records) in zone_data.items():
            zone = index.zones_by_id.get(zone_id)
            if zone is None:
                continue
            suffix = "." + zone.name
            old = {h for h in index.hosts if h.endswith(suffix)} | {h for h in index.owners if h.endswith(suffix)}
            replace_hosts(index, old | {r[0] for r in zone_hosts}, zone_hosts, zone_records)
            stale.subtree.add(zone.name)
            index.chains.pop(zone_id, None)  # built again below
        replace_hosts(index, hosts, host_rows, record_rows)
        touched.update(hosts)
        touched.update(owner for host in hosts for owner in index.owners.get(host, ()))
        # A zone whose NSEC3 chain changed: cached denials of existence of any of its names are stale.
        stale.subtree.update(index.sync_chains(touched))
        return stale

    # -- thread -----------------------------------------------------------------------------------

    def run(self, first: Callable[[], None] | None = None, idle: Callable[[], None] | None = None) -> None:
        """Load (or run ``first``), then poll until stopped; database failures are logged once per state
        change. ``idle`` runs after each poll that left nothing waiting (in this thread: the index does not
        change meanwhile)."""
        if first is not None:
            first()
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                applied = self.poll()
                if not self.stats.db_up:
                    logger.warning("database is reachable again: following the change feed")
                    self.stats.db_up = True
                failures = 0
                if applied >= BATCH:
                    continue  # more are waiting
                if idle is not None:
                    idle()
                # One poll per interval, however long the poll took (a change waits one interval at most).
                delay = max(0.0, self.poll_interval - (time.monotonic() - started))
            except DatabaseError as exc:
                self.stats.errors += 1
                if self.stats.db_up:
                    logger.warning("database unreachable, answering from memory and retrying: %s", exc)
                    self.stats.db_up = False
                failures += 1
                delay = min(MAX_BACKOFF, self.poll_interval * 2**failures)
                self.db.close()
                self.flush_purges()  # what was applied before the database went away is still purged
            except Exception:  # never let the follower die: log it and retry
                self.stats.errors += 1
                logger.exception("following the change feed failed")
                failures += 1
                delay = min(MAX_BACKOFF, self.poll_interval * 2**failures)
            self._stop.wait(delay)

    def start(
        self, first: Callable[[], None] | None = None, idle: Callable[[], None] | None = None
    ) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, args=(first, idle), name="follower", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it, ``timeout`` seconds at most."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def running(self) -> bool:
        """The thread is still alive (after ``stop``: busy in a call that did not return in time)."""
        return self._thread is not None and self._thread.is_alive()


def replace_hosts(index: ZoneIndex, names: set[str], host_rows: list[tuple], record_rows: list[tuple]) -> None:
    """Make the index's data for the hosts ``names`` equal to the rows, one atomic assignment per name,
    so a concurrent lookup sees the old or the new state of a name, never a missing one."""
    hosts = index.hosts
    fresh = {row[0]: zoneindex.host_value(row[2], row[3], row[4], bool(row[5])) for row in host_rows}
    for name in names | set(fresh):
        value = fresh.get(name)
        if value is None:
            hosts.pop(name, None)
        else:
            hosts[name] = value
    by_host: dict[str, list[tuple]] = {}
    for row in record_rows:
        by_host.setdefault(row[0], []).append(row)
    touched = names | set(by_host)
    owners: set[str] = set()
    for host in touched:
        owners.update(index.owners.get(host, ()))
    new_entries: dict[str, list[zoneindex.Extra]] = {}
    new_owners: dict[str, list[str]] = {}
    for host, rows in by_host.items():
        for _, owner, rtype, content, ttl in rows:
            rtype = rtype.upper()
            new_entries.setdefault(owner, []).append((host, rtype, ttl, zoneindex.render_content(rtype, content)))
            if owner not in new_owners.setdefault(host, []):
                new_owners[host].append(owner)
            owners.add(owner)
    for owner in owners:
        kept = [e for e in index.extra.get(owner, ()) if e[0] not in touched]
        entries = tuple(kept + new_entries.get(owner, []))
        if entries:
            index.extra[owner] = entries
        else:
            index.extra.pop(owner, None)
    for host in touched:
        if host in new_owners:
            index.owners[host] = tuple(new_owners[host])
        else:
            index.owners.pop(host, None)
