"""The snapshot's folder and file: the lasting default when it can be had, else the temp directory; a folder
others could write is refused; a snapshot round-trips its feed position; one of another format is ignored."""

from __future__ import annotations

import marshal
import os
import tempfile
from pathlib import Path

import pytest

from ddserver.dns.zoneindex import ZoneIndex
from ddserver.recursor import snapshot
from ddserver.store.changes import FeedCursor
from ddserver.store.dnsdata import ZoneRow


def test_the_default_folder_lasts_when_it_can(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "DEFAULT_DIR", str(tmp_path / "lib" / "ddserver" / "recursor"))
    folder = snapshot.snapshot_dir("")
    assert folder == tmp_path / "lib" / "ddserver" / "recursor"
    assert folder.stat().st_mode & 0o777 == 0o700


def test_else_a_private_folder_in_the_temp_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(snapshot, "DEFAULT_DIR", str(blocker / "recursor"))  # cannot be made
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert snapshot.snapshot_dir("") == tmp_path / "tmp" / f"ddserver-recursor-{os.getuid()}"


def test_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(OSError, match="not be writable by others"):
        snapshot.snapshot_dir(str(folder))
    folder.chmod(0o700)
    assert snapshot.snapshot_dir(str(folder)) == folder


def test_the_feed_position_round_trips(tmp_path: Path) -> None:
    index = ZoneIndex(60)
    index.hosts["h.example.org"] = ("192.0.2.1", None, 60)  # type: ignore[assignment]
    path = tmp_path / "index.snapshot"
    snapshot.write(path, index, FeedCursor.at(42, [40, 38], ("h.example.org", 1234.5), "7"))
    snap = snapshot.read(path, 60)
    assert snap is not None
    cursor = snap.cursor()
    assert cursor.position() == (42, [38, 40]) and cursor.mark == ("h.example.org", 1234.5) and cursor.server == "7"
    assert snap.index.hosts == index.hosts
    assert snapshot.read(path, 300) is None  # another default TTL: the answers would differ
    path.write_bytes(marshal.dumps((1, 60, 42, [], [], {}, {}, {}, 0.0)))  # the format before marks
    assert snapshot.read(path, 60) is None
    path.write_bytes(b"garbage")
    assert snapshot.read(path, 60) is None


def test_a_zone_keeps_its_secondaries(tmp_path: Path) -> None:
    """The also-notify addresses and the transfer keys (still sealed) survive a snapshot: a recursor started
    from one while the database is away still serves them to PowerDNS."""
    row = ZoneRow(
        3, "dyn.example.org", ("ns1.example.org",), "hostmaster.example.org", 9, 3600, 600, 604800, 60, 3600, None,
        ("192.0.2.7", "[2001:db8::7]:5300"), (("xfr.example.org", "hmac-sha256", "sealed1:abc:def"),),
    )  # fmt: skip
    index = ZoneIndex(60)
    index.set_zone(row)
    path = tmp_path / "index.snapshot"
    snapshot.write(path, index, FeedCursor.at(1, [], None, None))
    snap = snapshot.read(path, 60)
    assert snap is not None and snap.index.zones["dyn.example.org"].row == row
