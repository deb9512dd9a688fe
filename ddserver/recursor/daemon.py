"""The ``ddserver-recursor`` daemon: load the zones, follow the feed, and speak to PowerDNS in the mode the
command line (ddserver.recursor.main) chose."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ddserver import console, exposition
from ddserver.config import Config, parse_listen
from ddserver.db import Database
from ddserver.dns import pipe, remote
from ddserver.dns.purge import PurgeError, PurgeMethod, Purger
from ddserver.dns.zoneindex import ZoneIndex
from ddserver.errors import ConfigError, DatabaseError, DDServerError
from ddserver.recursor import metrics, snapshot
from ddserver.recursor.follower import BATCH, Follower, PurgeList
from ddserver.recursor.main import Handshake
from ddserver.recursor.server import (
    Quick,
    Responder,
    ResponseCache,
    SocketServer,
    StreamClock,
    StreamProgress,
    Watchdog,
    end_stuck_coprocess,
    serve_stream,
)
from ddserver.store import changes

logger = logging.getLogger("ddserver.recursor")

#: How long a pipe query waits for the first load before it FAILs. PowerDNS's pipe-timeout is 2 s by
#: default, and a coprocess that misses it is killed and started again, loading anew: the rest is a margin for
#: a machine so busy that the answer itself comes late (eight coprocesses starting at once on two cores did
#: miss 0.5 s).
FIRST_LOAD_WAIT = 1.0
#: Name of a coprocess's metrics file in [recursor] metrics_textfile_dir, before its process id.
TEXTFILE_PREFIX = "ddserver-recursor-"
#: What a coprocess does before it leaves, even by ``os._exit`` (its metrics file is removed).
_AT_END: list[Callable[[], None]] = []


class Purge:
    """The follower's purge hook: logs a failing PowerDNS once per state change, not once per change."""

    def __init__(self, purger: Purger) -> None:
        self.purger = purger
        self.ok = True

    def __call__(self, stale: PurgeList) -> bool:
        """Purge ``stale``; False when PowerDNS could not be told (the follower tries again later)."""
        try:
            self.purger.purge(stale.exact, stale.subtree, stale.zones_changed)
        except PurgeError as exc:
            if self.ok:
                logger.warning("cannot purge PowerDNS's cache (retrying with every poll): %s", exc)
                self.ok = False
            return False
        if not self.ok:
            logger.info("purging PowerDNS's cache works again")
            self.ok = True
        return True


def make_follower(config: Config) -> tuple[Follower, Purger]:
    section = config.recursor
    purger = Purger(
        PurgeMethod(section.purge),
        socket_path=section.control_socket,
        api_url=section.api_url,
        api_key=section.api_key,
        pdns_control=section.pdns_control,
    )
    follower = Follower(
        Database.from_config(config),
        default_ttl=config.dns.default_ttl,
        poll_interval=section.poll_interval,
        retention=config.dns.change_retention,
        purge=None if purger.method is PurgeMethod.NONE else Purge(purger),
    )
    return follower, purger


def commands(follower: Follower) -> dict[str, Callable[[list[str]], list[str]]]:
    """Answers to ``CMD`` / ``directBackendCmd``."""

    def stats(_: list[str]) -> list[str]:
        index = follower.index
        counts = index.stats() if index else {}
        s = follower.stats
        return [f"{k}: {v}" for k, v in counts.items()] + [
            f"last_change_id: {s.last_change_id}",
            f"reloads: {s.reloads}",
            f"database: {'up' if s.db_up else 'down'}",
        ]

    def reload(_: list[str]) -> list[str]:
        try:
            index = follower.load()
        except DatabaseError as exc:
            return [f"reload failed: {exc}"]
        return [f"reloaded: {len(index.zones)} zones, {len(index.hosts)} hosts"]

    return {"stats": stats, "reload": reload}


def metrics_text(follower: Follower, counter: metrics.QueryCounter, purger: Purger, server: Any = None) -> str:
    s = follower.stats
    index = follower.index
    gauges: dict[str, tuple[str, str, float]] = {
        "ddserver_recursor_reloads_total": ("counter", "Full loads of the zone data.", s.reloads),
        "ddserver_recursor_changes_applied_total": ("counter", "Changes applied from the feed.", s.changes_applied),
        "ddserver_recursor_last_change_id": ("gauge", "Id of the newest change applied.", s.last_change_id),
        "ddserver_recursor_change_lag_seconds": (
            "gauge",
            "Seconds from the last applied change's commit to its application.",
            float(s.change_lag),
        ),
        "ddserver_recursor_database_up": ("gauge", "1 when the last read of the database worked.", int(s.db_up)),
        "ddserver_recursor_load_seconds": ("gauge", "Duration of the last full load.", float(s.load_seconds)),
        "ddserver_recursor_zones": ("gauge", "Zones in memory.", len(index.zones) if index else 0),
        "ddserver_recursor_hosts": ("gauge", "Hosts in memory.", len(index.hosts) if index else 0),
        "ddserver_recursor_purge_failures_total": ("counter", "Failed cache purges.", purger.failures),
    }
    if server is not None:
        gauges["ddserver_recursor_connections_total"] = ("counter", "Connections accepted.", server.connections)
    return metrics.render(counter, gauges)


def _remote_responder(handler: remote.RemoteHandler, cache: ResponseCache) -> Responder:
    handler.on_query = cache.note
    handle = handler.handle

    def respond(line: bytes) -> bytes:
        if not line.strip():
            return b""  # PowerDNS never sends empty lines; answering one would desynchronise it
        return handle(line).encode() + b"\n"

    # Lookups as PowerDNS writes them; others are answered alike, only not cached.
    return cache.wrap(respond, remote.LOOKUP_PREFIX)


def from_snapshot(follower: Follower, path: Path, builder: snapshot.Builder) -> Callable[[], None]:
    """The pipe coprocesses' start: read the snapshot (having one built when there is none), catch up
    with the feed, then publish the index. While the database is unreachable, a snapshot of any age is
    served, stale (:func:`serve_stale`)."""

    def first() -> None:
        probed = False
        while True:
            snap = snapshot.read(path, follower.default_ttl)
            if snap is not None and catches_up(follower, snap):
                if not resume(follower, snap):
                    return
                logger.info("started from the snapshot of %s", time.ctime(snap.created))
                if time.time() - snap.created > snapshot.REFRESH_AGE:
                    builder.start()
                return
            if snap is not None and not probed:
                probed = True  # too old to catch up: a new one is built, unless the database is unreachable
                try:
                    changes.last_id(follower.db)
                except DatabaseError as exc:
                    follower.adopt(snap.index, snap.cursor(), snap.created)
                    serve_stale(follower, snap, exc)
                    return
            if follower.stopping():
                return  # PowerDNS closed the pipe before the snapshot was there
            if not builder.running():
                builder.start()
            time.sleep(0.1)

    return first


def write_snapshot(config: Config, path: Path, rediscover: bool) -> int:
    with snapshot.build_lock(path) as mine:
        if not mine:
            return 0  # another builder is at it
        follower, purger = make_follower(config)
        first_load(follower)
        assert follower.index is not None
        snapshot.write(path, follower.index, follower.cursor)
        logger.info("snapshot written to %s", path)
        if rediscover and purger.method is not PurgeMethod.NONE:
            # A remote-pipe coprocess that PowerDNS asked for the zone list before any data was loaded
            # may be gone already: have PowerDNS fill its zone cache again, now that coprocesses start fast.
            try:
                purger.purge((), (), rediscover=True)
            except PurgeError as exc:
                logger.debug("no rediscover after the snapshot: %s", exc)
    return 0


def _snapshot_path(config: Config, without: str) -> Path | None:
    """Where the snapshot of this configuration's database is kept; None (logged, with what ``without``
    means) when there is no folder for it."""
    try:
        folder = snapshot.snapshot_dir(config.recursor.snapshot_dir)
    except OSError as exc:
        logger.warning("no snapshots (%s): %s", without, exc)
        return None
    return snapshot.snapshot_path(folder, config.database.url)


def _snapshot_start(follower: Follower, config: Config, rediscover: bool) -> Callable[[], None] | None:
    path = _snapshot_path(config, "each coprocess loads the database itself")
    if path is None:
        return None
    return from_snapshot(follower, path, snapshot.Builder(path, config.source, rediscover))


def socket_start(follower: Follower, path: Path | None) -> None:
    """The socket daemon's first data: a snapshot younger than the feed's retention, caught up with the feed;
    else a full load; and when the database is unreachable, the snapshot of any age, served stale until the
    database returns (the follower then catches up, or loads in full when the feed no longer reaches back
    to it). Without a snapshot, the database is waited for."""
    snap = snapshot.read(path, follower.default_ttl) if path is not None else None
    if snap is not None and catches_up(follower, snap):
        if not resume(follower, snap):
            return
        logger.info(
            "started from the snapshot of %s, caught up with the change feed (change %d)",
            time.ctime(snap.created),
            follower.stats.last_change_id,
        )
        return
    try:
        follower.load()
        return
    except DatabaseError as exc:
        if snap is None:
            logger.warning("no snapshot to serve from%s: waiting for the database", f" at {path}" if path else "")
            follower.db.close()
            first_load(follower)
            return
        follower.adopt(snap.index, snap.cursor(), snap.created)
        serve_stale(follower, snap, exc)


def catches_up(follower: Follower, snap: snapshot.Snapshot) -> bool:
    """Whether the change feed still reaches back to a snapshot (a minute spare), so that it can be caught up."""
    return time.time() - snap.created < follower.retention - 60


def resume(follower: Follower, snap: snapshot.Snapshot) -> bool:
    """Take a snapshot's index and catch up with the feed, then publish it; False when the database was
    unreachable and the snapshot is served stale instead."""
    follower.adopt(snap.index, snap.cursor(), snap.created)
    try:
        while follower.poll() >= BATCH:
            pass
    except DatabaseError as exc:
        serve_stale(follower, snap, exc)
        return False
    follower.loaded.set()
    return True


def serve_stale(follower: Follower, snap: snapshot.Snapshot, exc: DatabaseError) -> None:
    """Publish a snapshot's index while the database is unreachable; the follower logs its return."""
    follower.db.close()
    follower.stats.db_up = False
    follower.loaded.set()
    logger.warning(
        "database unreachable (%s): serving STALE data from the snapshot of %s (%d zones, %d hosts, change %d) "
        "until it returns",
        exc,
        time.ctime(snap.created),
        len(snap.index.zones),
        len(snap.index.hosts),
        follower.cursor.high,
    )


class SnapshotKeeper:
    """The socket daemon's snapshot: written after the first data is in, then at most every ``interval``
    seconds when the data changed, and at a clean stop; from the follower's thread, between two polls, so
    the index and its feed position agree."""

    def __init__(self, follower: Follower, path: Path, interval: float) -> None:
        self.follower = follower
        self.path = path
        self.interval = interval
        self._written: tuple[int, int] | None = None
        self._at = -float("inf")
        self._failing = False

    def started_from(self, snap_high: int) -> None:
        """The index came from the snapshot on disk at this position: nothing to write until it changes."""
        self._written = (snap_high, self.follower.stats.reloads)
        self._at = time.monotonic()

    def __call__(self, force: bool = False) -> None:
        follower = self.follower
        if follower.index is None or not follower.stats.db_up:
            return  # stale data: the snapshot on disk holds it already
        state = (follower.cursor.high, follower.stats.reloads)
        if state == self._written or (not force and time.monotonic() - self._at < self.interval):
            return
        started = time.monotonic()
        try:
            snapshot.write(self.path, follower.index, follower.cursor)
        except OSError as exc:
            if not self._failing:
                logger.warning("cannot write the snapshot %s (retrying later): %s", self.path, exc)
                self._failing = True
            self._at = time.monotonic()
            return
        if self._failing:
            logger.info("writing the snapshot works again")
            self._failing = False
        self._written, self._at = state, time.monotonic()
        logger.info("snapshot written to %s in %.2f s", self.path, self._at - started)


def first_load_index(follower: Follower, clock: StreamClock) -> Callable[[], ZoneIndex | None]:
    """The coprocesses' index: until the first load, a query waits for it, but FAILs (so PowerDNS retries)
    before PowerDNS's timeout, which it counts from when it wrote the line. That is no earlier than this
    process's last answer, so the wait is counted from there: a query that waited in the pipe while the
    process was starting gets less."""

    def index() -> ZoneIndex | None:
        if follower.loaded.is_set():
            return follower.index
        return follower.wait_index(max(0.0, FIRST_LOAD_WAIT - (time.monotonic() - clock.last_write)))

    return index


def coprocess_metrics(
    config: Config, follower: Follower, purger: Purger
) -> tuple[metrics.QueryCounter | None, Callable[[], None]]:
    """A coprocess's query counter and its metrics file ([recursor] metrics_textfile_dir), started; returns
    the counter (None without a folder: nothing is counted) and what stops the file."""
    folder = config.recursor.metrics_textfile_dir
    if not folder:
        return None, lambda: None
    counter = metrics.QueryCounter()
    textfile = exposition.Textfile(
        folder,
        TEXTFILE_PREFIX,
        config.recursor.metrics_textfile_interval,
        lambda: metrics_text(follower, counter, purger),
    ).start()
    _AT_END.append(textfile.stop)
    return counter, textfile.stop


def run_pipe(
    follower: Follower,
    first: Callable[[], None] | None,
    handshake: Handshake,
    timeout: float = 0.0,
    counter: metrics.QueryCounter | None = None,
) -> int:
    """Serve PowerDNS's pipe backend on stdin/stdout; ``timeout``: see :func:`watchdog`; ``counter``: counts
    the answers for the metrics file of :func:`coprocess_metrics`."""
    cache = ResponseCache(follower, counter)
    clock = StreamClock(handshake.at)
    session = pipe.PipeSession(first_load_index(follower, clock), commands(follower), cache.on_query)
    session.abi = handshake.abi
    respond, ask = _pipe_responder(session, cache, clear_on_helo=True)
    follower.start(first)
    too_long = pipe.fail("request line too long").encode()
    with watchdog(timeout) as progress:
        serve_stream(respond, too_long, pipe.MAX_LINE, clock, handshake.pending, ask=ask, progress=progress)
    return end_coprocess(follower)


@contextlib.contextmanager
def watchdog(timeout: float) -> Iterator[StreamProgress]:
    """A coprocess's progress, watched while the block runs when ``timeout`` is set ([recursor]
    coprocess_timeout): one request unanswered that long ends the process (:class:`Watchdog`)."""
    progress = StreamProgress()
    if timeout <= 0:
        yield progress
        return
    dog = Watchdog(progress, timeout, end_stuck_coprocess).start()
    try:
        yield progress
    finally:
        dog.stop()


def _pipe_responder(
    session: pipe.PipeSession, cache: ResponseCache, *, clear_on_helo: bool = False
) -> tuple[Responder, Quick]:
    """A pipe session's answers as bytes, and what the I/O loop asks first with each read: the cache, then
    the session's path for a question in one step."""
    handle = session.handle
    ask = cache.asker(session.query)

    def answer(line: bytes) -> bytes:
        if line.startswith(b"Q\t"):
            found = ask(line + b"\n")  # a query read with others, or in parts
            if found is not None:
                return found
        elif clear_on_helo and line.startswith(b"HELO"):
            cache.clear()  # a new handshake may change the ABI, and so the answers' layout
        return handle(line.decode("latin-1")).encode("latin-1", "replace")

    return answer, ask


def end_coprocess(follower: Follower) -> int:
    """PowerDNS closed the pipe: stop following and leave. A follower still inside a database call after a
    second is not waited for: the process ends without the interpreter's finalisation, which a daemon
    thread inside a C extension (sqlite3) can crash with SIGSEGV."""
    follower.stop(timeout=1.0)
    while _AT_END:
        _AT_END.pop()()
    if follower.running():
        logging.shutdown()
        os._exit(0)
    return 0


def handler_options(config: Config, follower: Follower | None = None) -> dict[str, Any]:
    """The remote handler's settings from the configuration: what opens transfer keys with the data key, the
    networks that may transfer zones without one, and (``[recursor] key_changes = yes``, with ``follower``)
    what stores the key changes PowerDNS's tools ask for. The data key is read when PowerDNS first asks for a
    key (a coprocess starts no slower for it); one that cannot be read fails that answer, logged, and
    nothing else."""
    sealer: list[Any] = []

    def load_sealer() -> Any:
        if not sealer:
            from ddserver import sealing  # cryptography: loaded only where keys are asked for

            sealer.append(sealing.load(config))
        return sealer[0]

    def unseal(sealed: str, context: str) -> str:
        return str(load_sealer().unseal(sealed, context))

    options: dict[str, Any] = {"unseal": unseal, "allow_axfr_from": config.recursor.allow_axfr_from}
    if config.recursor.key_changes and follower is not None:
        wait = max(2.0, 3 * config.recursor.poll_interval)
        options["write_key"] = functools.partial(write_key, follower, load_sealer, wait)
    return options


def write_key(follower: Follower, sealer: Callable[[], Any], wait: float, change: remote.KeyChange) -> int:
    """Store a change to a signed zone's keys asked through PowerDNS (the handler's ``write_key``): a new key
    with its private key sealed as ``ddserver zone key add`` seals it. The store puts the change into the
    change feed, so every recursor reloads the zone's keys and purges it from its PowerDNS's caches. Then
    waits (``wait`` seconds at most, while the follower runs) until this recursor's index shows the change:
    PowerDNS reads the keys again at once (its HTTP API looks for the key it just added).

    :returns: the id of the key added or changed.
    :raises DDServerError: no such key, no data key, the database failed.
    """
    from ddserver import signing  # cryptography: loaded only where keys are changed
    from ddserver.store import dnssec as key_store

    action = remote.KeyAction
    db = follower.db
    key_id = change.key_id
    if change.action is action.ADD:
        assert change.key is not None
        key = signing.to_add(sealer(), change.zone, change.key, change.active, change.published)
        key_id = key_store.add_key(db, change.zone, key).id
    elif change.action is action.REMOVE:
        key_store.remove_key(db, change.zone, key_id)
    elif change.action in (action.ACTIVATE, action.DEACTIVATE):
        key_store.set_key(db, change.zone, key_id, active=change.action is action.ACTIVATE)
    else:
        key_store.set_key(db, change.zone, key_id, published=change.action is action.PUBLISH)
    deadline = time.monotonic() + wait
    while follower.running() and not _shows(follower.index, change, key_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    return key_id


def _shows(index: ZoneIndex | None, change: remote.KeyChange, key_id: int) -> bool:
    """Whether ``index`` holds the zone's keys as they are after ``change``."""
    zone = index.zones.get(change.zone) if index is not None else None
    if zone is None:
        return False
    found = [k for k in zone.row.keys if k[0] == key_id]
    action = remote.KeyAction
    if change.action is action.REMOVE:
        return not found
    if not found:
        return False
    if change.action in (action.ACTIVATE, action.DEACTIVATE):
        return found[0][2] is (change.action is action.ACTIVATE)
    if change.action in (action.PUBLISH, action.UNPUBLISH):
        return found[0][3] is (change.action is action.PUBLISH)
    return True


def run_remote_pipe(
    follower: Follower,
    first: Callable[[], None] | None,
    purger: Purger,
    handshake: Handshake,
    timeout: float = 0.0,
    options: dict[str, Any] | None = None,
    counter: metrics.QueryCounter | None = None,
) -> int:
    """Serve PowerDNS's remote backend over its pipe connector; ``timeout``: see :func:`watchdog`;
    ``options``: see :func:`handler_options`; ``counter``: as for :func:`run_pipe`."""
    clock = StreamClock(handshake.at)
    handler = remote.RemoteHandler(first_load_index(follower, clock), commands(follower), **(options or {}))

    def start() -> None:
        if first is not None:
            first()
        else:
            first_load(follower)
        if handler.refused_domains and purger.method is not PurgeMethod.NONE:
            # PowerDNS asked for the zone list before it was loaded: have it fill its zone cache now.
            try:
                purger.purge((), (), rediscover=True)
            except PurgeError as exc:
                logger.warning("cannot ask PowerDNS to rediscover the zones: %s", exc)

    follower.start(start)
    cache = ResponseCache(follower, counter)
    with watchdog(timeout) as progress:
        serve_stream(
            _remote_responder(handler, cache),
            remote.false("message too long").encode() + b"\n",
            remote.MAX_MESSAGE,
            clock,
            handshake.pending,
            ask=cache.asker(handler.query),
            progress=progress,
        )
    return end_coprocess(follower)


def first_load(follower: Follower) -> None:
    """Load before serving, waiting for the database as long as it takes (logged once, retried)."""
    delay = 0.5
    warned = False
    while True:
        try:
            follower.load()
            return
        except DatabaseError as exc:
            if not warned:
                logger.warning("cannot load the zone data yet, retrying: %s", exc)
                warned = True
            follower.db.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _pipe_sessions(follower: Follower, cache: ResponseCache) -> Callable[[], tuple[Responder, Quick]]:
    """Per connection of PowerDNS's pipe backend (``pipe-command`` naming the socket): a session of its own,
    since each connection sends its own HELO, behind one answer cache shared by all. Sharing is safe: a
    query line's fields differ in number between the ABI versions whose answers are laid out differently
    (1 and 2: 6 and 7 fields, plain DATA; 3 to 5: 8 fields, DATA with scope and auth)."""
    cmds = commands(follower)

    def session() -> tuple[Responder, Quick]:
        return _pipe_responder(pipe.PipeSession(lambda: follower.index, cmds, cache.on_query), cache)

    return session


def run_socket(
    follower: Follower,
    counter: metrics.QueryCounter,
    path: str,
    mode: int,
    metrics_at: str,
    purger: Purger,
    protocol: str = "remote",
    snapshot_path: Path | None = None,
    snapshot_interval: float = 0.0,
    options: dict[str, Any] | None = None,
) -> int:
    """Serve the remote backend protocol (``protocol="remote"``) or the pipe backend protocol (``"pipe"``)
    on a unix socket, from one index shared by every PowerDNS connection; ``snapshot_path``: see
    :func:`socket_start` and :class:`SnapshotKeeper` (``snapshot_interval`` 0: written at start and stop
    only)."""
    began = time.monotonic()
    cache = ResponseCache(follower, counter)
    if protocol == "pipe":
        server = SocketServer(path, _pipe_sessions(follower, cache),
                              pipe.fail("request line too long").encode(), pipe.MAX_LINE, mode)  # fmt: skip
    else:
        handler = remote.RemoteHandler(lambda: follower.index, commands(follower), **(options or {}))
        respond = _remote_responder(handler, cache)
        ask = cache.asker(handler.query)
        server = SocketServer(path, lambda: (respond, ask), remote.false("message too long").encode() + b"\n",
                              remote.MAX_MESSAGE, mode)  # fmt: skip
    keeper = None
    if snapshot_path is not None:
        keeper = SnapshotKeeper(follower, snapshot_path, snapshot_interval or float("inf"))
        before = follower.stats.reloads
        socket_start(follower, snapshot_path)
        if follower.stats.reloads == before:
            keeper.started_from(follower.cursor.high)
    else:
        first_load(follower)
    try:
        server.bind()
    except OSError as exc:
        raise DDServerError(f"--{protocol}-socket {path}: {exc.strerror or exc}")
    follower.start(idle=keeper)
    if metrics_at:
        host, port = parse_listen(metrics_at)
        try:
            metrics.serve(host, port, lambda: metrics_text(follower, counter, purger, server))
        except OSError as exc:
            raise DDServerError(f"--metrics {metrics_at}: {exc.strerror or exc}")
        logger.info("metrics on http://%s:%d/metrics", host, port)

    def stop(signum: int, frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("serving the %s backend protocol on %s (%.2f s after start)", protocol, path, time.monotonic() - began)
    server.serve()
    follower.stop()
    if keeper is not None and not follower.running():
        keeper(force=True)
    return 0


def run(args: argparse.Namespace, handshake: Handshake) -> int:
    """Run the mode ``args`` chose; ``handshake`` is what the command line read and answered already."""

    def body() -> int:
        config = console.config_from(args.config)
        console.setup_logging(config, "ddserver-recursor")
        metrics_at = args.metrics if args.metrics is not None else config.recursor.metrics
        if metrics_at:
            try:
                parse_listen(metrics_at)
            except ValueError:
                raise ConfigError(f"--metrics {metrics_at!r}: expected HOST:PORT")
        follower, purger = make_follower(config)
        if args.write_snapshot:
            return write_snapshot(config, Path(args.write_snapshot), args.rediscover)
        timeout = config.recursor.coprocess_timeout
        if args.pipe or args.remote_pipe:
            counter, stop_metrics = coprocess_metrics(config, follower, purger)
            try:
                if args.pipe:
                    first = _snapshot_start(follower, config, rediscover=False)
                    return run_pipe(follower, first, handshake, timeout, counter)
                first = _snapshot_start(follower, config, rediscover=True)
                return run_remote_pipe(
                    follower, first, purger, handshake, timeout, handler_options(config, follower), counter
                )
            finally:
                stop_metrics()
        mode = int(config.recursor.socket_mode, 8)
        if args.pipe_socket:
            path, protocol = args.pipe_socket, "pipe"
        else:
            path, protocol = args.remote_socket, "remote"
        counter = metrics.QueryCounter()
        snapshot_at = _snapshot_path(config, "a restart waits for the database")
        return run_socket(
            follower,
            counter,
            os.path.abspath(path),
            mode,
            metrics_at,
            purger,
            protocol,
            snapshot_at,
            config.recursor.snapshot_interval,
            handler_options(config, follower) if protocol == "remote" else None,
        )

    return console.run(body, "ddserver-recursor")
