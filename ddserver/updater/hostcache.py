"""Hosts this updater process authenticated recently, kept current by following the change feed, so that an
update that changes nothing (most of what routers send) is answered without reading the database.

Entries only ever stand for what the database held a moment ago: every change of a host's DNS data enters
the feed (polled every ``poll_interval``) and a replaced secret changes ``settings.HOST_SECRETS_EPOCH``. When
the poll fails or falls behind, the cache is not used until it succeeds again; nor is it polled while no
requests come. Anything it cannot answer (a wrong secret, a weak one, a write) goes the database's way.

Only logins with a host's name and secret are answered from here: a login with a user name and a token is
checked against the database on every request, so a revoked token is refused at its next request (and an
expired one, whose expiry is compared with the clock on each use) without anything to learn here.
"""

from __future__ import annotations

import logging
import threading
import time

from ddserver.db import Database
from ddserver.errors import DatabaseError
from ddserver.store import updates as store
from ddserver.store.changes import Change, FeedCursor, FeedPruned

logger = logging.getLogger(__name__)

#: Changes read per poll.
BATCH = 5000
#: Polls that an entry read from the database may straddle before it is no longer taken (reads are short).
MAX_READ_POLLS = 25
MAX_BACKOFF = 5.0
#: Seconds without a request after which polling stops (and the cache empties) until the next request.
IDLE = 60.0


class HostCache:
    """Name -> ``store.HostState`` as read; safe to share between threads.

    :param size: entries kept at most (the oldest go first).
    """

    def __init__(self, db: Database, *, size: int, poll_interval: float) -> None:
        self.db = db
        self.size = size
        self.poll_interval = poll_interval
        #: Name -> (host, the newest change id of it that the entry is known to hold; 0 when read).
        self._hosts: dict[str, tuple[store.HostState, int]] = {}
        #: Name -> the poll that last dropped it: a read that began before that poll is not taken.
        self._dropped: dict[str, int] = {}
        #: Name -> (poll, the newest change id of it seen in the feed).
        self._seen: dict[str, tuple[int, int]] = {}
        self._cleared = 0
        self._polls = 0
        self._epoch: str | None = None
        #: Name -> writes of it by this process under way (``writing`` to ``written``).
        self._writing: dict[str, int] = {}
        #: Names that requests wrote or read since the poll under way began reading hosts.
        self._touched: set[str] = set()
        self._cursor: FeedCursor | None = None
        #: Entries are used until then (``time.monotonic``): a poll that stalls or fails turns the cache off.
        self._fresh_until = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._used = 0.0

    # -- requests ---------------------------------------------------------------------------------

    def get(self, name: str) -> store.HostState | None:
        self._used = clock = time.monotonic()
        if clock > self._fresh_until:
            if self._thread is None:
                self._start()
            return None
        entry = self._hosts.get(name)
        return None if entry is None else entry[0]

    def wait_fresh(self, timeout: float) -> bool:
        """Start polling if it is not running, and wait until entries are used (for tests)."""
        deadline = time.monotonic() + timeout
        while True:
            self.get("")
            if time.monotonic() <= self._fresh_until:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def mark(self) -> int:
        """Call before reading a host from the database; pass the result to ``put``."""
        return self._polls

    def put(self, host: store.HostState, mark: int) -> None:
        """Keep ``host`` as read after ``mark``, unless a change of it has been seen since."""
        with self._lock:
            self._touched.add(host.name)
            if self._outdated(mark) or self._dropped.get(host.name, -1) >= mark:
                return
            self._keep(host, 0)

    def _outdated(self, mark: int) -> bool:
        """Whether what was read after ``mark`` may miss a change: the cache was emptied since, or the read
        straddles more polls than the dropped names are kept for."""
        return mark < self._cleared or self._polls - mark > MAX_READ_POLLS

    def _keep(self, host: store.HostState, through: int) -> None:
        if time.monotonic() > self._fresh_until:
            return
        self._hosts.pop(host.name, None)
        self._hosts[host.name] = (host, through)
        while len(self._hosts) > self.size:
            del self._hosts[next(iter(self._hosts))]

    def writing(self, name: str) -> int:
        """Forget ``name``: this process is about to write it. Returns a mark for ``written``, which must follow."""
        with self._lock:
            self._hosts.pop(name, None)
            self._dropped[name] = self._polls
            self._writing[name] = self._writing.get(name, 0) + 1
            self._touched.add(name)
            return self._polls

    def written(self, name: str, mark: int, host: store.HostState | None = None, change_id: int | None = None) -> None:
        """The write ``writing`` announced is over. With ``host`` and ``change_id``, keep ``host`` as the write
        left it, its change having feed id ``change_id``; else (nothing changed, or the write failed) forget it.

        Writes of one host are ordered by its row lock, so a change of it with a lower id is already in
        ``host`` and one with a higher id came later: the entry is kept until the feed shows a higher one.
        """
        with self._lock:
            left = self._writing.pop(name, 1) - 1
            if left > 0:
                self._writing[name] = left
            self._touched.add(name)
            # Reads under way may have seen the host before this write.
            self._dropped[name] = self._polls
            if host is None or change_id is None or self._outdated(mark):
                self._hosts.pop(name, None)
                return
            seen = self._seen.get(name)
            if seen is not None and seen[1] > change_id:
                self._hosts.pop(name, None)
                return
            current = self._hosts.get(name)
            if current is not None and current[1] > change_id:
                return  # a later write of this process got there first
            self._keep(host, change_id)

    def __len__(self) -> int:
        return len(self._hosts)

    # -- following ----------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read the feed and the secrets' epoch; read again the hosts held here that changed.

        :returns: how many changes were read.
        :raises DatabaseError: when the database cannot be read (the cache is off until a poll succeeds).
        """
        polls = self._polls + 1
        cursor = self._cursor
        clear = cursor is None
        rows: list[Change] = []
        if cursor is None:
            cursor = FeedCursor.at_newest(self.db)
        else:
            try:
                rows, cursor = cursor.read(self.db, BATCH)
            except FeedPruned:
                clear = True
                cursor = FeedCursor.at_newest(self.db)
        epoch = store.secrets_epoch(self.db)
        clear = clear or epoch != self._epoch
        zones = {row.zone_id for row in rows if row.name in ("*", row.zone)}
        # Hosts held here that changed elsewhere are read again, all in one query, rather than forgotten and
        # read one by one by their next requests (routers come back). The read follows the feed's, so it
        # holds at least the changes seen; one of this process's writes under way, or a request's read or
        # write while it runs, wins over it.
        refresh: dict[str, int] = {}
        with self._lock:
            self._touched = set()
            if not clear:
                hosts, writing = self._hosts, self._writing
                for row in rows:
                    entry = hosts.get(row.name)
                    if entry is None or entry[1] >= row.id or row.name in writing or entry[0].zone_id in zones:
                        continue
                    refresh[row.name] = max(row.id, refresh.get(row.name, 0))
        fresh = store.read_hosts(self.db, refresh) if refresh else {}
        with self._lock:
            if clear:
                self._hosts.clear()
                self._dropped.clear()
                self._seen.clear()
                self._cleared = polls
            else:
                hosts, seen = self._hosts, self._seen
                for row in rows:
                    if row.id > seen.get(row.name, (0, 0))[1]:
                        seen[row.name] = (polls, row.id)
                    entry = hosts.get(row.name)
                    if entry is None or entry[1] < row.id:
                        hosts.pop(row.name, None)
                        self._dropped[row.name] = polls
                if zones:
                    # A zone changed as a whole (its hosts may be gone with it).
                    for name in [n for n, (h, _) in self._hosts.items() if h.zone_id in zones]:
                        del self._hosts[name]
                    self._cleared = polls
                horizon = polls - MAX_READ_POLLS
                if len(self._dropped) > 4 * BATCH:
                    self._dropped = {n: p for n, p in self._dropped.items() if p >= horizon}
                if len(self._seen) > 4 * BATCH:
                    self._seen = {n: s for n, s in self._seen.items() if s[0] >= horizon}
            self._epoch = epoch
            self._cursor = cursor
            self._polls = polls
            # Used while the next polls are due; a poll late by several intervals turns the cache off.
            self._fresh_until = time.monotonic() + max(1.0, 5 * self.poll_interval)
            touched, writing = self._touched, self._writing
            for name, host in fresh.items():
                if name not in touched and name not in writing and host.zone_id not in zones:
                    self._keep(host, refresh[name])
        return len(rows)

    def _off(self) -> None:
        with self._lock:
            self._fresh_until = 0.0
            self._hosts.clear()
            self._cursor = None

    def run(self) -> None:
        delay = self.poll_interval
        failing = False
        while not self._stop.is_set():
            if time.monotonic() - self._used > IDLE:
                with self._lock:
                    self._thread = None
                self._off()
                return
            try:
                self.poll()
            except DatabaseError as exc:
                self._off()
                if not failing:
                    logger.warning("host cache off, the database cannot be read: %s", exc)
                failing = True
                delay = min(MAX_BACKOFF, max(delay * 2, self.poll_interval))
            except Exception:
                self._off()
                logger.exception("host cache off after an unexpected error")
                delay = MAX_BACKOFF
            else:
                if failing:
                    logger.info("host cache on again")
                failing = False
                delay = self.poll_interval
            self._stop.wait(delay)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._used = time.monotonic()
            self._thread = threading.Thread(target=self.run, name="host-cache", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
