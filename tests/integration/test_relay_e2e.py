"""End to end: an update through a real updater is relayed by its relay worker to a second ddserver updater
(the third party, with a database of its own); a third party that hangs neither delays the local answer nor
loses the change, and one that answers badauth is not asked again until the relay is edited."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ddserver import sealing
from ddserver.db import Database
from ddserver.store import relays
from tests import support
from tests.blackhole import BlackholeProxy
from tests.updater_support import ZONE, Site, basic, host_row, make_site, write_updater_config

HOME = f"home.{ZONE}"
DATA_KEY = sealing.new_key()


def _sealer() -> sealing.Sealer:
    return sealing.load(
        support.make_config("sqlite:///unused", Path("/nonexistent")).replace("auth", data_key=DATA_KEY)
    )


def get(url: str, login: str, secret: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read().decode()


@dataclass
class Pair:
    """The local updater (the ``db`` fixture's database, relay worker on) and the third party."""

    local: Site
    local_port: int
    local_process: support.Process
    third: Site
    third_port: int
    third_process: support.Process

    def update(self, address: str) -> str:
        url = f"http://127.0.0.1:{self.local_port}/nic/update?hostname={HOME}&myip={address}"
        return get(url, HOME, self.local.secrets[HOME])

    def add_relay(self, port: int, secret: str) -> relays.Relay:
        sealer = _sealer()
        return relays.add(
            self.local.db,
            self.local.home.id,
            url=f"http://127.0.0.1:{port}/nic/update",
            remote_name=HOME,
            username=HOME,
            sealed_secret=sealer.seal(secret, relays.secret_context(self.local.home.id)),
            family="both",
            limit=3,
        )

    def third_address(self) -> str | None:
        return host_row(self.third.db, HOME)["ipv4"]

    def relay(self, relay_id: int) -> relays.Relay:
        return relays.get(self.local.db, relay_id)


@pytest.fixture
def pair(db: Database, db_url: str, tmp_path: Path) -> Iterator[Pair]:
    third_db = support.create_database(support.new_database_url("sqlite", tmp_path))
    processes: list[support.Process] = []
    try:
        third = make_site(third_db)
        third_port = support.free_port()
        third_config = write_updater_config(tmp_path / "third.conf", f"sqlite:///{third_db.url.path}", third_port)
        processes.append(
            support.Process(
                [support.console_script("ddserver-updater"), "--config", str(third_config)],
                log=tmp_path / "third.log",
            )
        )
        local = make_site(db)
        local_port = support.free_port()
        # Short waits, so that the test sees a timeout and a retry within seconds.
        local_config = tmp_path / "local.conf"
        local_config.write_text(
            f"[database]\nurl = {db_url}\n\n[auth]\nsecret_key = test-secret-key\ndata_key = {DATA_KEY}\n\n"
            f"[updater]\nlisten = 127.0.0.1:{local_port}\nmin_interval = 0\nnochg_interval = 0\n\n"
            "[relay]\npoll_interval = 0.05\ntimeout = 2\nretry_min = 0.2\nretry_max = 1\n\n"
            "[logging]\nlevel = info\n"
        )
        processes.append(
            support.Process(
                [support.console_script("ddserver-updater"), "--config", str(local_config)],
                log=tmp_path / "local.log",
            )
        )
        processes[0].wait_port("127.0.0.1", third_port)
        processes[1].wait_port("127.0.0.1", local_port)
        yield Pair(local, local_port, processes[1], third, third_port, processes[0])
    finally:
        for process in processes:
            process.stop()
        third_db.close_all()


def _no_secret_in(pair: Pair, *secrets: str) -> None:
    for process in (pair.local_process, pair.third_process):
        text = process.log()
        for secret in secrets:
            assert secret not in text


@pytest.mark.slow
def test_a_change_is_relayed_and_a_hanging_third_party_neither_delays_nor_loses_it(pair: Pair) -> None:
    third_secret = pair.third.secrets[HOME]
    with BlackholeProxy("127.0.0.1", pair.third_port) as proxy:
        added = pair.add_relay(proxy.port, third_secret)
        # The host has no address yet: nothing to send, the relay is settled without a request.
        support.wait_until(lambda: not pair.relay(added.id).pending, what="the relay of a host without addresses")
        assert pair.relay(added.id).last_result is None
        assert proxy.accepted == 0

        # A change through the real updater reaches the third party.
        assert pair.update("198.51.100.7") == "good 198.51.100.7\n"
        support.wait_until(lambda: pair.third_address() == "198.51.100.7", what="the third party to have it")
        support.wait_until(lambda: pair.relay(added.id).last_result == "good", what="the answer filed")
        done = pair.relay(added.id)
        assert (done.last_result, done.last_sent, done.pending, done.attempts) == ("good", "198.51.100.7", False, 0)

        # The third party hangs: the local answer still comes, while the relay cannot have been delivered.
        proxy.blackhole()
        assert pair.update("198.51.100.8") == "good 198.51.100.8\n"
        assert host_row(pair.local.db, HOME)["ipv4"] == "198.51.100.8"
        assert pair.relay(added.id).pending
        assert pair.third_address() == "198.51.100.7"
        # The try times out and is filed as a failure to retry; the relay stays pending.
        support.wait_until(lambda: pair.relay(added.id).last_result == "error", timeout=30, what="the try to time out")
        failed = pair.relay(added.id)
        assert failed.pending and failed.attempts >= 1 and not failed.stopped
        assert failed.last_detail == "timed out"
        # Back, the third party gets the change from a retry. (The tries that timed out reach it too, late, as
        # after a real partition: they carry the same address, since no other change was made meanwhile.)
        proxy.restore()
        support.wait_until(lambda: not pair.relay(added.id).pending, timeout=30, what="the retry to succeed")
        final = pair.relay(added.id)
        # nochg when a late try got there first.
        assert final.last_result in ("good", "nochg")
        assert (final.last_sent, final.attempts) == ("198.51.100.8", 0)
        assert pair.third_address() == "198.51.100.8"
    _no_secret_in(pair, third_secret, pair.local.secrets[HOME])


@pytest.mark.slow
def test_badauth_stops_the_relay_until_it_is_edited(pair: Pair) -> None:
    third_secret = pair.third.secrets[HOME]
    wrong = "not-the-secret-" + third_secret[:6]
    added = pair.add_relay(pair.third_port, wrong)
    assert pair.update("198.51.100.20") == "good 198.51.100.20\n"
    support.wait_until(lambda: pair.relay(added.id).stopped, timeout=30, what="the relay to stop after badauth")
    stopped = pair.relay(added.id)
    assert stopped.last_result == "badauth" and not stopped.pending
    # A later change is not sent to a relay that was refused...
    assert pair.update("198.51.100.21") == "good 198.51.100.21\n"
    # ...until the owner gives the right secret: then the current address goes at once.
    sealer = _sealer()
    relays.edit(
        pair.local.db,
        added.id,
        url=stopped.url,
        remote_name=HOME,
        username=HOME,
        family="both",
        sealed_secret=sealer.seal(third_secret, relays.secret_context(pair.local.home.id)),
    )
    support.wait_until(lambda: pair.third_address() == "198.51.100.21", timeout=30, what="the edited relay")
    # The answer is filed right after the third party committed it.
    support.wait_until(lambda: pair.relay(added.id).last_result == "good", what="the answer filed")
    # The third party saw exactly one wrong login: the stopped relay was never tried again before the edit.
    failures = pair.third.db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM host_auth_failures"))
    assert int(failures) == 1
    _no_secret_in(pair, third_secret, wrong, pair.local.secrets[HOME])
