"""Snapshots of the index on local disk: the many short-lived pipe coprocesses start from one in milliseconds,
and the socket daemon starts from one fast, or at all while its database is unreachable.

PowerDNS starts one coprocess per backend instance and, with its default ``pipe-timeout``, kills any that
takes longer than 2 s to answer; loading a large database takes longer. So pipe modes start from a snapshot
and follow the feed from the snapshot's position; a detached builder process (which PowerDNS does not kill)
writes it. The socket daemon writes its own after loading and then every ``[recursor] snapshot_interval``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import marshal
import os
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from ddserver.dns.zoneindex import ZoneIndex
from ddserver.store.changes import FeedCursor
from ddserver.store.dnsdata import ZoneRow

logger = logging.getLogger(__name__)

FORMAT = 4  # 3: zones carry their DNSSEC state and keys (sealed); 4: and their secondaries and transfer keys
#: The lasting folder tried first when ``[recursor] snapshot_dir`` is empty.
DEFAULT_DIR = "/var/lib/ddserver/recursor"
#: A snapshot older than this is still used (the feed fills the gap) but a fresh one is built for next time.
REFRESH_AGE = 3600.0


@dataclass
class Snapshot:
    index: ZoneIndex
    high: int
    gaps: list[int]
    created: float
    #: The change at ``high`` (name, created_at) and the database server it was read from (FeedCursor).
    mark: tuple[str, float] | None = None
    server: str | None = None

    def cursor(self) -> FeedCursor:
        return FeedCursor.at(self.high, self.gaps, self.mark, self.server)


def snapshot_dir(configured: str) -> Path:
    """The folder for snapshots: the configured one; else ``DEFAULT_DIR`` (which lasts across reboots) when
    this user can have it, else a private folder in the temp directory.

    :raises OSError: when the folder cannot be made or is not private to this user (someone else could plant
        answers).
    """
    if configured:
        return _private_folder(Path(configured))
    try:
        return _private_folder(Path(DEFAULT_DIR))
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"ddserver-recursor-{os.getuid()}"
        logger.debug("snapshots in %s, not %s: %s", fallback, DEFAULT_DIR, exc)
        return _private_folder(fallback)


def _private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise OSError(f"{folder} must belong to this user and not be writable by others")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"{folder} is not writable")
    return folder


def snapshot_path(folder: Path, database_url: str) -> Path:
    return folder / f"index-{hashlib.sha256(database_url.encode()).hexdigest()[:16]}.snapshot"


def write(path: Path, index: ZoneIndex, cursor: FeedCursor) -> None:
    """Write atomically: readers see the old file or the new one, never half of one."""
    high, gaps = cursor.position()
    data = (
        FORMAT,
        index.default_ttl,
        high,
        gaps,
        [astuple(zone.row) for zone in list(index.zones.values())],
        # The dicts themselves, not copies (a million hosts' copy is some 40 MB more at the peak): marshal
        # holds the interpreter lock from the first entry to the last, so no other thread changes them meanwhile.
        index.hosts,
        index.extra,
        index.owners,
        time.time(),
        cursor.mark,
        cursor.server,
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-")
    try:
        with os.fdopen(fd, "wb") as out:
            marshal.dump(data, out)
            out.flush()
            os.fsync(out.fileno())  # on disk before it replaces the old one: a power cut leaves one whole
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path, default_ttl: int) -> Snapshot | None:
    """The snapshot at ``path``, or None when there is none usable (missing, other format, other TTL)."""
    try:
        with open(path, "rb") as f:
            # Whole, then decoded: marshal.load on the file reads it in small pieces, four times slower.
            data = marshal.loads(f.read())
        if data[0] != FORMAT:
            return None
        _, ttl, high, gaps, zones, hosts, extra, owners, created, mark, server = data
    except (OSError, EOFError, ValueError, TypeError, IndexError):
        return None
    if ttl != default_ttl:
        return None
    index = ZoneIndex(default_ttl)
    for row in zones:
        # Lists of names and of keys become tuples again; the other fields are as written.
        fields: list[Any] = [tuple(v) if n in (2, 14) else v for n, v in enumerate(row)]
        fields[13] = tuple(tuple(key) for key in row[13])
        fields[15] = tuple(tuple(key) for key in row[15])
        index.set_zone(ZoneRow(*fields))
    index.hosts, index.extra, index.owners = hosts, extra, owners
    return Snapshot(index, high, list(gaps), created, (str(mark[0]), float(mark[1])) if mark else None, server)


class Builder:
    """Starts the detached process that writes a snapshot, at most one at a time per snapshot file."""

    def __init__(self, path: Path, config_file: str | None, rediscover: bool = False) -> None:
        self.path = path
        self.config_file = config_file
        #: Ask PowerDNS to refill its zone cache once written (remote-pipe: see main.write_snapshot).
        self.rediscover = rediscover
        self._process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running():
            return
        argv = [sys.executable, "-m", "ddserver.recursor.main", "--write-snapshot", str(self.path)]
        if self.config_file:
            argv[3:3] = ["--config", self.config_file]
        if self.rediscover:
            argv.append("--rediscover")
        # Its own session: PowerDNS kills a slow coprocess, and the build must survive that.
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )


@contextlib.contextmanager
def build_lock(path: Path):  # type: ignore[no-untyped-def]
    """Yields True for the one builder that may write ``path`` now, False for the others."""
    with open(str(path) + ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
