"""The RFC 2136 worker: follows the change feed and keeps each external primary in step, zone by zone.

Per zone it holds a lease (so of several workers one pushes a zone at a time), reads the changes past the
zone's stored position, pushes the current DNS data of the changed names, and advances the position only
after the server answered NOERROR. A failing zone is retried with backoff while the others go on.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from ddserver.config import Config
from ddserver.db import Database
from ddserver.dns import rfc2136
from ddserver.dns.rfc2136 import Rfc2136Error, Target
from ddserver.errors import DatabaseError
from ddserver.rfc2136 import client
from ddserver.rfc2136.metrics import WorkerMetrics
from ddserver.store import changes
from ddserver.store import rfc2136 as store
from ddserver.store import zones as zone_store
from ddserver.store.changes import Change, FeedCursor, FeedDiverged, FeedPruned
from ddserver.store.zones import Zone

logger = logging.getLogger(__name__)

#: Feed rows read per pass; more pending changes are taken in the next passes.
FEED_LIMIT = 20000
#: How often an SOA prerequisite that failed (someone else changed the zone) is tried again at once.
PREREQUISITE_ATTEMPTS = 5
#: Seconds between two writes of an idle zone's position (it follows the feed so pruning does not pass it).
IDLE_ADVANCE = 30.0


@dataclass
class ZoneRun:
    """What the worker remembers of one zone between passes (in memory only)."""

    zone_id: int
    #: Changes above the stored position already applied (kept while an older id is still invisible). Whole
    #: changes, not ids: after a failover to a replica that lacked the last changes, the new primary gives
    #: their ids to other changes, which must not be taken for these.
    done: set[Change] = field(default_factory=set)
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    holding: bool = False
    last_advance: float = 0.0


@dataclass
class PassResult:
    """What one pass did: names pushed per zone, and the zones that failed with their message."""

    pushed: dict[str, int] = field(default_factory=dict)
    synced: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)


def frontier(changes: list[Change], after: int, gap_timeout: float, now: float) -> int:
    """The highest id up to which every change is visible or will never be.

    Ids may commit out of order: an id missing between visible ones may belong to a transaction still
    open. It counts as dead (rolled back) once the next visible change is older than ``gap_timeout``.
    """
    expected = after + 1
    for change in changes:
        if change.id > expected and change.created_at > now - gap_timeout:
            return expected - 1
        expected = change.id + 1
    return expected - 1


class FeedWindow:
    """The changes above the lowest zone position, kept between passes: a pass reads only the changes after
    the newest one seen, and the ids missing below it at spaced-out times (:class:`FeedCursor`), instead of
    every change above the position again. A missing id holds the frontier for ``gap_timeout``, and ids
    that never come (rolled back, or skipped by Galera's interleaved auto-increments) are common: re-read
    whole, the window was read some 80 times per change at 300 changes a second.

    A missing id is read once more just before the frontier passes it, so one that committed meanwhile is
    never passed unread. Another server or feed behind the URL (:class:`FeedDiverged`), a pruned feed or a
    lower position makes the window read again from the position.
    """

    def __init__(self) -> None:
        self.low = -1
        self.rows: list[Change] = []
        #: The oldest id the feed kept when the window was last read in full.
        self.oldest = 0
        #: Ids up to here were read once more before the frontier passed them.
        self.confirmed = 0
        self.cursor = FeedCursor()
        #: The feed turned out to be another one (a failover, say): what was pushed from the old one may
        #: include changes the new one never had, so every zone is compared in full.
        self.diverged = False

    def read(self, db: Database, low: int, limit: int, gap_timeout: float) -> tuple[list[Change], int, int]:
        """The visible changes above ``low`` (up to ``limit``), the oldest id kept, and the frontier."""
        if self.low < 0 or low < self.low:
            self._reset(db, low, limit)
        else:
            if low > self.low:
                self.rows = [c for c in self.rows if c.id > low]
                self.low = low
            try:
                rows, cursor = self.cursor.read(db, max(0, limit - len(self.rows)))
            except FeedDiverged as exc:
                logger.warning("%s: reading the change feed afresh and comparing every zone in full", exc)
                self.diverged = True
                self._reset(db, low, limit)
            except FeedPruned:
                self._reset(db, low, limit)
            else:
                self._add([c for c in rows if c.id > self.low])
                self.cursor = cursor
        checked: set[int] = set()
        while True:
            edge = frontier(self.rows, self.low, gap_timeout, time.time())
            passed = [i for i in self._missing(max(self.low, self.confirmed), edge) if i not in checked]
            if not passed:
                break
            checked.update(passed)
            late = db.read(functools.partial(changes.changes_with_ids, ids=passed))
            if not late:
                break
            self._add(late)  # committed meanwhile: pushed, and the frontier computed again with them
        self.confirmed = max(self.confirmed, edge)
        # Ids the frontier passed are not awaited any longer.
        cursor, dead = self.cursor, max(self.low, self.confirmed)
        if any(i <= dead for i in cursor.gaps):
            gaps = {i: at for i, at in cursor.gaps.items() if i > dead}
            self.cursor = FeedCursor(cursor.high, gaps, cursor.mark, cursor.server, cursor.due)
        return self.rows, self.oldest, edge

    def _reset(self, db: Database, low: int, limit: int) -> None:
        rows, self.oldest = store.feed(db, low, limit)
        self.low, self.rows, self.confirmed = low, rows, low
        high = rows[-1].id if rows else low
        present = {c.id for c in rows}
        mark = changes.mark_of(rows[-1]) if rows else None
        self.cursor = FeedCursor.at(high, [i for i in range(low + 1, high) if i not in present], mark)

    def _add(self, rows: list[Change]) -> None:
        if rows:
            known = {c.id for c in self.rows}
            self.rows = sorted(self.rows + [c for c in rows if c.id not in known], key=lambda c: c.id)

    def _missing(self, after: int, upto: int) -> list[int]:
        """Ids in (after, upto] with no visible change in the window."""
        if upto <= after:
            return []
        present = {c.id for c in self.rows if after < c.id <= upto}
        return [i for i in range(after + 1, upto + 1) if i not in present]


def holder_gone(holder: str) -> bool:
    """Whether a lease holder (``host:pid:tag``) was a process of this machine that no longer runs.

    Only a holder named with this machine's host name and a process id that is not this process's is judged;
    any other (another machine's, or one this process made) counts as alive until its lease runs out.
    """
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) in (0, os.getpid()):
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class Worker:
    """Keeps every zone with an RFC 2136 server in step with the database."""

    def __init__(self, db: Database, config: Config, *, holder: str | None = None) -> None:
        self.db = db
        self.config = config
        self.settings = config.rfc2136
        self.default_ttl = config.dns.default_ttl
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.runs: dict[int, ZoneRun] = {}
        self.window = FeedWindow()
        self.stopping = threading.Event()
        self.metrics = WorkerMetrics()

    # -- one pass over every zone

    def run_pass(self, *, force: bool = False) -> PassResult:
        """Push what is pending for every zone this worker may take now.

        :param force: ignore the backoff schedule (``--once`` tries every zone).
        """
        result = PassResult()
        now = time.monotonic()
        zones = store.pushed_zones(self.db)
        leases = store.leases(self.db)
        known = {zone.id for zone in zones}
        for zone_id in list(self.runs):
            if zone_id not in known:
                del self.runs[zone_id]
        due: list[tuple[Zone, Target, ZoneRun]] = []
        for zone in zones:
            run = self.runs.setdefault(zone.id, ZoneRun(zone.id))
            if not force and now < run.next_attempt:
                continue
            try:
                target = Target.from_settings(
                    zone.name,
                    zone.rfc2136_server,
                    zone.rfc2136_transport,
                    zone.tsig_name,
                    zone.tsig_algorithm,
                    zone.tsig_secret,
                )
            except Rfc2136Error as exc:
                self._failed(zone, run, exc, result)
                continue
            lease = self._lease(zone, run, leases.get(zone.id))
            if lease is None:
                result.busy.append(zone.name)
                continue
            if lease.full_sync:
                # Asked by an admin (zone sync, a new server or key): compare in full first.
                try:
                    self._compare(zone, target, run, result)
                    store.clear_full_sync(self.db, zone.id)
                except Rfc2136Error as exc:
                    self._failed(zone, run, exc, result)
                    continue
            due.append((zone, target, run))
        if not due:
            self.metrics.pass_done(None)
            return result
        low = min(zone.rfc2136_position for zone, _, _ in due)
        feed, oldest, edge = self.window.read(self.db, low, FEED_LIMIT, self.settings.gap_timeout)
        self.metrics.pass_done(edge)
        if self.window.diverged:
            for zone in zones:
                store.request_full_sync(self.db, zone.id)  # compared by the next pass, then cleared
            self.window.diverged = False
        for zone, target, run in due:
            try:
                self._push_zone(zone, target, run, feed, oldest, edge, result)
            except Rfc2136Error as exc:
                self._failed(zone, run, exc, result)
        return result

    def _lease(self, zone: Zone, run: ZoneRun, current: store.Lease | None) -> store.Lease | None:
        """The zone's lease if this worker holds it: taken, or renewed once half of it has run out."""
        stamp = time.time()
        lease_time = self.settings.lease_time
        if current is not None and current.holder == self.holder and current.expires_at - stamp > lease_time / 2:
            run.holding = True
            return current
        if current is not None and current.holder != self.holder and current.expires_at > stamp:
            if not holder_gone(current.holder):
                return None
            # A worker of this machine that died (kill -9, a crash, a failover's restart) without releasing:
            # its successor need not wait out the lease.
            lease = store.take_over(self.db, zone.id, current.holder, self.holder, lease_time)
            run.holding = lease is not None
            if lease is not None:
                logger.info("%s: took over from %s, which no longer runs", zone.name, current.holder)
            return lease
        lease = store.acquire(self.db, zone.id, self.holder, lease_time)
        run.holding = lease is not None
        if lease is not None and current is not None and current.holder not in ("", self.holder):
            logger.info("%s: took over from %s", zone.name, current.holder)
        return lease

    def _push_zone(
        self,
        zone: Zone,
        target: Target,
        run: ZoneRun,
        changes: list[Change],
        oldest: int,
        edge: int,
        result: PassResult,
    ) -> None:
        position = zone.rfc2136_position
        if oldest and position + 1 < oldest and position < edge:
            # Pruning passed this zone's position: changes may be lost; compare the whole zone.
            logger.warning("%s: fell behind the change feed (pruned); comparing the whole zone", target.describe())
            self._compare(zone, target, run, result)
            self._advance(zone, run, edge, ok=zone.name not in result.errors)
            return
        pending = [c for c in changes if c.zone_id == zone.id and c.id > position and c not in run.done]
        self.metrics.pending(zone.name, min((c.created_at for c in pending), default=None))
        if not pending:
            if edge > position and time.monotonic() - run.last_advance > IDLE_ADVANCE:
                self._advance(zone, run, edge, ok=False)
            return
        names = [c.name for c in pending]
        if "*" in names:
            # The zone's TTL changed: every host that inherits it changes.
            hosts, records = store.zone_state(self.db, zone.id)
            names += [h.name for h in hosts] + [r.name for r in records]
        managed = rfc2136.managed_names(zone.name, names)
        if managed:
            self.push(zone, target, managed)
        result.pushed[zone.name] = result.pushed.get(zone.name, 0) + len(managed)
        run.done.update(pending)
        self.metrics.pending(zone.name, None)
        self._advance(zone, run, edge, ok=zone.name not in result.errors)
        logger.info("%s: pushed %d names for %d changes", target.describe(), len(managed), len(pending))

    def _advance(self, zone: Zone, run: ZoneRun, edge: int, *, ok: bool) -> None:
        """Store the new position: every change of the zone up to the frontier is applied now.

        Changes past the frontier that were applied stay in ``done``, so they are not sent again.
        """
        position = max(zone.rfc2136_position, edge)
        zone_store.set_rfc2136_state(
            self.db,
            zone.id,
            position=position if position > zone.rfc2136_position else None,
            ok=ok,
        )
        run.done = {c for c in run.done if c.id > position}
        run.last_advance = time.monotonic()
        if run.failures:
            logger.info("%s: in step again after %d failed attempts", zone.name, run.failures)
        run.failures = 0
        run.last_error = None
        run.next_attempt = 0.0

    def _compare(self, zone: Zone, target: Target, run: ZoneRun, result: PassResult) -> None:
        """A full comparison; a server that refuses the transfer gets every name ddserver has instead
        (nothing stays stale then but names deleted meanwhile), and the refusal is recorded."""
        try:
            result.synced[zone.name] = self.full_sync(zone, target)
        except rfc2136.TransferFailed as exc:
            self._record(zone, run, exc, result)
            hosts, records = store.zone_state(self.db, zone.id)
            names = rfc2136.managed_names(zone.name, [h.name for h in hosts] + [r.name for r in records])
            self.push(zone, target, names)
            result.pushed[zone.name] = result.pushed.get(zone.name, 0) + len(names)

    def _record(self, zone: Zone, run: ZoneRun, exc: Rfc2136Error, result: PassResult) -> None:
        """Record an error that does not stop the zone's changes (a refused zone transfer)."""
        logger.error("%s", exc.message)
        self.metrics.failed(zone.name)
        result.errors[zone.name] = exc.message
        zone_store.set_rfc2136_state(self.db, zone.id, error=exc.message)

    def _failed(self, zone: Zone, run: ZoneRun, exc: Rfc2136Error, result: PassResult) -> None:
        run.failures += 1
        self.metrics.failed(zone.name)
        base, ceiling = self.settings.retry_min, self.settings.retry_max
        delay = min(ceiling, base * 2 ** min(run.failures - 1, 30))
        run.next_attempt = time.monotonic() + delay * random.uniform(0.8, 1.2)
        result.errors[zone.name] = exc.message
        if exc.message != run.last_error or run.failures % 10 == 1:
            logger.error("%s (attempt %d; next in %.0f s)", exc.message, run.failures, delay)
        try:
            zone_store.set_rfc2136_state(self.db, zone.id, error=exc.message)
        except DatabaseError as db_exc:
            logger.error("%s: cannot record the error: %s", zone.name, db_exc.message)
        run.last_error = exc.message

    # -- pushing names and whole zones

    def push(self, zone: Zone, target: Target, names: Iterable[str]) -> int:
        """Make the server hold the database's current data for ``names``, in messages of ``batch_size``.

        Each message carries the SOA read just before the data as prerequisite: if anyone changed the zone
        in between (another worker with older data, say), the server refuses it and it is rebuilt.

        :returns: how many messages were sent.
        """
        timeout = self.settings.timeout
        default_ttl = zone.host_ttl(self.default_ttl)
        sent = 0
        for chunk in rfc2136.chunks(list(names), self.settings.batch_size):
            for attempt in range(1, PREREQUISITE_ATTEMPTS + 1):
                record = client.soa(target, timeout)
                hosts, records = store.names_state(self.db, chunk)
                desired, problems = rfc2136.desired_state(zone.name, hosts, records, default_ttl)
                for problem in problems:
                    logger.warning("%s: skipped %s", target.describe(), problem)
                update = rfc2136.build_update(target, chunk, desired, soa=record)
                try:
                    client.send(target, update, timeout)
                    sent += 1
                    self.metrics.sent(zone.name, len(chunk))
                    break
                except rfc2136.ZoneChanged:
                    if attempt == PREREQUISITE_ATTEMPTS:
                        raise
                    logger.info(
                        "%s: the zone changed at the server meanwhile; building the update again", target.describe()
                    )
        return sent

    def full_sync(self, zone: Zone, target: Target) -> int:
        """Compare the server's zone (AXFR) with the database and fix every difference in A, AAAA, TXT.

        The apex and in-zone nameserver names (glue) are left as the admin made them.

        :returns: how many names were fixed.
        """
        rrsets = client.transfer(target, self.settings.timeout)
        protected = rfc2136.nameserver_names(rrsets, target.origin)
        names = self.differences(zone, rfc2136.server_state(target, rrsets, protected), protected)
        if names:
            self.push(zone, target, names)
            logger.info("%s: full comparison fixed %d names", target.describe(), len(names))
        return len(names)

    def differences(self, zone: Zone, server: rfc2136.Desired, protected: list[str]) -> list[str]:
        """Names whose A, AAAA or TXT rrsets at the server differ from the database's."""
        hosts, records = store.zone_state(self.db, zone.id)
        desired, _ = rfc2136.desired_state(zone.name, hosts, records, zone.host_ttl(self.default_ttl))
        for name in protected:
            desired.pop(name, None)
        return rfc2136.differences(server, desired)

    # -- running

    def release_all(self) -> None:
        for zone_id, run in self.runs.items():
            if run.holding:
                try:
                    store.release(self.db, zone_id, self.holder)
                except DatabaseError:
                    pass
                run.holding = False

    def run_forever(self) -> None:
        """Follow the feed until ``stopping`` is set; a database outage is waited out, not fatal."""
        interval = self.settings.poll_interval
        outage = 0
        try:
            while not self.stopping.is_set():
                try:
                    result = self.run_pass()
                    if outage:
                        logger.info("database reachable again")
                    outage = 0
                except DatabaseError as exc:
                    outage += 1
                    self.metrics.pass_done(None, database_up=False)
                    if outage == 1 or outage % 50 == 0:
                        logger.error("database: %s; retrying", exc.message)
                    self.stopping.wait(min(5.0, interval * 2 ** min(outage, 5)))
                    continue
                if not result.pushed:
                    # After a push, look again at once: more changes came in while it was sent.
                    self.stopping.wait(interval)
        finally:
            self.release_all()
