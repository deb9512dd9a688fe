"""``ddserver notify``: stale warnings, the link and the button that keep a host, removal after the grace period,
abuse mail, a failing SMTP server, overlapping runs, disabled owners; through a real SMTP server (aiosmtpd),
on SQLite and MariaDB. The job's clock is moved by passing ``at``; the hosts are made old by moving their
creation back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ddserver import cli
from ddserver.db import Database
from ddserver.errors import NotFound
from ddserver.interface import notify
from ddserver.store import changes, events, hosts, notices, users
from tests import support
from tests.integration.interface.conftest import (
    Mailbox,
    add_host,
    add_user,
    add_zone,
    csrf_of,
    interface_config,
    log_in_as,
)

DAY = 86400
NOTIFY = {"stale_after_days": 30, "remove_after_days": 14}


def _age(db: Database, host: hosts.Host, days: int) -> None:
    """Make a host look created (and never updated) ``days`` ago."""
    stamp = int(time.time()) - days * DAY
    db.run(lambda tx: tx.execute("UPDATE hosts SET created_at = ? WHERE id = ?", (stamp, host.id)))


def _exists(db: Database, name: str) -> bool:
    try:
        hosts.get(db, name)
    except NotFound:
        return False
    return True


def test_stale_hosts_are_warned_once_kept_by_link_button_or_update_and_removed_otherwise(
    db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int], make_app: Any
) -> None:
    box, port = smtp
    config = interface_config(db_url, tmp_path, port, notify=NOTIFY)
    add_zone(db)
    alice = add_user(db, "alice", language="de")
    bob = add_user(db, "bob")
    names = ["link", "button", "update", "silent", "fresh"]
    made = {name: add_host(db, alice, f"{name}.dyn.example.org", limit=10) for name in names}
    for name in names[:-1]:
        _age(db, made[name], 40)
    _age(db, add_host(db, bob, "bob.dyn.example.org"), 40)
    users.set_flags(db, bob.id, is_disabled=True)
    now = int(time.time())

    report = notify.run(config, db, at=now)
    assert (report.queued, report.sent, report.failed, report.removed) == (4, 4, 0, [])
    mail = box.wait_for("alice@example.org", 4)
    assert box.to("bob@example.org") == []
    subjects = sorted(str(m["Subject"]) for m in mail)
    # In alice's language (German), one per stale host, none for the fresh one.
    assert all("seit 30 Tagen nicht aktualisiert" in s for s in subjects), subjects
    assert [s.split()[1] for s in subjects] == [f"{n}.dyn.example.org" for n in sorted(names[:-1])]
    by_host = {str(m["Subject"]).split()[1].split(".")[0]: m for m in mail}
    assert "14" in by_host["link"].get_content()

    # Never twice: the next days' runs send nothing new.
    assert notify.run(config, db, at=now + DAY).sent == 0
    assert notify.run(config, db, at=now + 2 * DAY).queued == 0
    assert len(box.to("alice@example.org")) == 4

    # The link: a GET only asks (mail scanners open links), the POST keeps the host, once.
    app = make_app(notify=NOTIFY)
    path = Mailbox.link(by_host["link"], "/hosts/keep/")
    page = app.get(path)
    assert "link.dyn.example.org" in page.text
    done = app.post(path, {"csrf_token": csrf_of(page)})
    assert "link.dyn.example.org" in done.text and done.status_int == 200
    again = app.get(path, expect_errors=True)
    assert again.status_int == 400
    assert app.get("/hosts/keep/not-a-token", expect_errors=True).status_int == 400
    # The button on the host's page, shown while the warning is unanswered.
    csrf = log_in_as(app, alice)
    button = made["button"]
    assert 'id="stale-warning"' in app.get(f"/hosts/{button.id}").text
    app.post(f"/hosts/{button.id}/keep", {"csrf_token": csrf}).follow()
    assert 'id="stale-warning"' not in app.get(f"/hosts/{button.id}").text
    # An update counts as a confirmation.
    hosts.set_addresses(db, made["update"].id, ipv4="192.0.2.7", client="192.0.2.7", result="good")

    # Not before the grace period is over.
    assert notify.run(config, db, at=now + 13 * DAY).removed == []
    feed = changes.last_id(db)
    report = notify.run(config, db, at=now + 15 * DAY)
    assert report.removed == ["silent.dyn.example.org"] and report.sent == 1
    assert not _exists(db, "silent.dyn.example.org")
    assert all(_exists(db, f"{n}.dyn.example.org") for n in ("link", "button", "update", "fresh", "bob"))
    # The removal went through the store's deletion: the name entered the change feed.
    assert "silent.dyn.example.org" in [c.name for c in changes.since(db, feed)]
    assert [e.detail for e in events.recent(db, kinds=("host",)) if e.subject == "host silent.dyn.example.org"] == [
        "removed by ddserver notify: stale, warning unanswered"
    ]
    removal = box.wait_for("alice@example.org", 5)[-1]
    assert "silent.dyn.example.org" in str(removal["Subject"]) and "entfernt" in str(removal["Subject"])

    # Later runs: nothing new, and nothing about the hosts that were kept until they are silent again.
    assert notify.run(config, db, at=now + 16 * DAY).sent == 0
    assert len(box.to("alice@example.org")) == 5 and box.to("bob@example.org") == []
    # Silent for 30 days after the confirmation (or the update, or since made): a new warning (a new cycle).
    report = notify.run(config, db, at=now + 31 * DAY)
    assert report.sent == 4 and report.removed == []
    assert notify.run(config, db, at=now + 32 * DAY).sent == 0


def test_abuse_flags_are_mailed_once_per_flag(
    db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    config = interface_config(db_url, tmp_path, port)  # [notify] abuse is on by default, stale warnings off
    add_zone(db)
    alice = add_user(db, "alice")
    bob = add_user(db, "bob")
    home = add_host(db, alice, "home.dyn.example.org")
    other = add_host(db, bob, "other.dyn.example.org")
    _age(db, home, 400)
    hosts.set_flags(db, home.id, abuse=True, reason="too many faults")
    hosts.set_flags(db, other.id, abuse=True)
    users.set_flags(db, bob.id, is_disabled=True)

    assert notify.run(config, db).sent == 1
    (mail,) = box.wait_for("alice@example.org")
    assert "home.dyn.example.org" in str(mail["Subject"]) and "abuse" in str(mail["Subject"])
    assert f"/hosts/{home.id}" in mail.get_content()
    assert notify.run(config, db).sent == 0
    # Cleared, then flagged again: a new event, mailed once.
    hosts.set_flags(db, home.id, abuse=False, reset_faults=True)
    assert notify.run(config, db).sent == 0
    hosts.set_flags(db, home.id, abuse=True)
    assert notify.run(config, db).sent == 1
    assert notify.run(config, db).sent == 0
    assert len(box.wait_for("alice@example.org", 2)) == 2
    # The disabled owner got nothing (and is told once enabled again, if the flag is still there).
    assert box.to("bob@example.org") == []
    users.set_flags(db, bob.id, is_disabled=False)
    assert notify.run(config, db).sent == 1
    assert len(box.wait_for("bob@example.org")) == 1
    # An account's notices go with it.
    users.delete(db, bob.id)
    assert (
        db.read(lambda tx: tx.all("SELECT host_name FROM host_notices")) == [{"host_name": "home.dyn.example.org"}] * 2
    )


def test_a_failing_smtp_server_is_reported_and_the_mail_sent_once_on_the_next_run(
    db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    box, port = smtp
    add_zone(db)
    alice = add_user(db, "alice")
    for n in range(5):
        hosts.set_flags(db, add_host(db, alice, f"h{n}.dyn.example.org").id, abuse=True)
    dead = support.free_port()
    config_file = support.write_config_file(
        tmp_path / "ddserver.conf",
        db_url,
        f"[mail]\nhost = 127.0.0.1\nport = {dead}\ntimeout = 5\n[http]\nbase_url = http://ddserver.example.test\n",
    )
    # The command: exit 1 and one line saying what failed.
    assert cli.main(["--config", str(config_file), "notify"]) == 1
    out = capsys.readouterr()
    # Three failures in a row: the other two are not tried (each try may wait [mail] timeout).
    assert "sent 0, 3 failed, 2 not tried" in out.out, out.out
    assert "could not be sent" in out.err and "Traceback" not in out.err
    assert len(notices.pending(db)) == 5  # still queued
    # The server is back: sent on the next run, once.
    support.write_config_file(config_file, db_url, f"[mail]\nhost = 127.0.0.1\nport = {port}\n")
    assert cli.main(["--config", str(config_file), "notify"]) == 0
    assert "sent 5, 0 failed" in capsys.readouterr().out
    assert cli.main(["--config", str(config_file), "notify"]) == 0
    assert len(box.wait_for("alice@example.org", 5)) == 5
    time.sleep(0.2)  # a second copy, if one were sent, would have arrived with the first
    assert len(box.to("alice@example.org")) == 5


def test_overlapping_runs_and_a_run_that_died_send_nothing_twice(
    db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    config = interface_config(db_url, tmp_path, port, notify=NOTIFY)
    add_zone(db)
    alice = add_user(db, "alice")
    for n in range(6):
        _age(db, add_host(db, alice, f"h{n}.dyn.example.org", limit=10), 40)
    now = int(time.time())
    reports: list[notify.Report] = []
    runs = [threading.Thread(target=lambda: reports.append(notify.run(config, db, at=now))) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(60)
    assert sum(r.sent for r in reports) == 6 and sum(r.failed for r in reports) == 0
    assert len(box.wait_for("alice@example.org", 6)) == 6

    # A run that claimed a mail and died before it could record the answer: never sent again, reported once.
    late = add_host(db, alice, "late.dyn.example.org", limit=10)
    _age(db, late, 40)
    assert notices.queue_stale(db, stale_after=30 * DAY, at=now) == 1
    (queued,) = notices.pending(db)
    assert notices.claim(db, queued.id, at=now)
    report = notify.run(config, db, at=now + 2 * 3600)
    assert report.unknown == ["stale late.dyn.example.org"] and report.sent == 0
    assert notify.run(config, db, at=now + 3 * 3600).unknown == []
    # Nor is the host removed on an unknown warning.
    assert sorted(notify.run(config, db, at=now + 20 * DAY).removed) == [f"h{n}.dyn.example.org" for n in range(6)]
    assert _exists(db, "late.dyn.example.org")
    time.sleep(0.2)
    assert len(box.to("alice@example.org")) == 12


def test_a_link_expires(db: Database, db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    config = interface_config(db_url, tmp_path, port, notify=NOTIFY)
    add_zone(db)
    alice = add_user(db, "alice")
    _age(db, add_host(db, alice, "home.dyn.example.org"), 40)
    now = int(time.time())
    notify.run(config, db, at=now)
    token = Mailbox.link(box.wait_for("alice@example.org")[0], "/hosts/keep/").rsplit("/", 1)[1]
    late = now + 15 * DAY + 1
    assert notices.check_link(db, token, at=late) is None and notices.confirm(db, token, at=late) is None
    assert notices.check_link(db, token, at=now) == "home.dyn.example.org"
