"""Each host's update history and failed-login trail, written by the updater app on each database dialect:
what is recorded (and what is not, so the hot path stays cheap), its fields, and trimming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ddserver import cli, passwords
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import history, hosts
from ddserver.updater.app import create_app
from tests.updater_support import ZONE, Site, call, make_site, updater_config

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"
PROXY = "127.0.0.1"


@pytest.fixture
def site(db: Database) -> Site:
    return make_site(db)


@pytest.fixture
def apps() -> Iterator[list[Any]]:
    """Apps made by a test, closed after it (committer and cache threads)."""
    made: list[Any] = []
    yield made
    for app in made:
        app.config["ddserver.updater"].close()


def _app(apps: list[Any], config: Config, db: Database, **values: Any) -> Any:
    app = create_app(updater_config(config, **values), db)
    apps.append(app)
    return app


def _rows(db: Database, table: str, host_id: int) -> list[dict[str, Any]]:
    return db.read(lambda tx: tx.all(f"SELECT * FROM {table} WHERE host_id = ? ORDER BY id", (host_id,)))


def _via_proxy(client: str, tls: bool) -> dict[str, Any]:
    return {
        "remote": PROXY,
        "headers": {"X-Forwarded-For": client, "X-Forwarded-Proto": "https" if tls else "http"},
    }


@pytest.mark.parametrize("cache", [0, 1000], ids=["cache-off", "cache-on"])
def test_history_records_changes_refreshes_and_faults(
    apps: list[Any], config: Config, db: Database, site: Site, cache: int
) -> None:
    app = _app(apps, config, db, host_cache=cache, host_cache_poll=0.05, status_refresh=3600, nochg_interval=0)
    auth = (HOME, site.secrets[HOME])
    # A change over TLS through the trusted proxy, then one in plain HTTP from the router itself.
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth, **_via_proxy("203.0.113.7", True)).body == (
        "good 198.51.100.1\n"
    )
    assert call(app, "/nic/update", {"myipv6": "2001:db8::1"}, auth=auth, remote="192.0.2.66").body == (
        "good 198.51.100.1,2001:db8::1\n"
    )
    rows = _rows(db, history.UPDATES, site.home.id)
    assert [(r["client"], r["tls"], r["result"], r["ipv4"], r["ipv6"], r["fault"]) for r in rows] == [
        ("203.0.113.7", 1, "good", "198.51.100.1", None, None),
        ("192.0.2.66", 0, "good", "198.51.100.1", "2001:db8::1", None),
    ]
    assert rows[1]["created_at"] == hosts.get(db, HOME).last_update_at
    # Unchanged updates while the status is fresh write nothing, history included (from the cache or not).
    for _ in range(5):
        assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body.startswith("nochg")
    assert len(_rows(db, history.UPDATES, site.home.id)) == 2
    # A status older than status_refresh is rewritten by the next nochg, which enters the history.
    db.run(lambda tx: tx.execute("UPDATE hosts SET last_update_at = 1 WHERE id = ?", (site.home.id,)))
    app.config["ddserver.updater"].close()
    app = _app(apps, config, db, host_cache=cache, status_refresh=3600)
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth, remote="192.0.2.67").body.startswith("nochg")
    last = _rows(db, history.UPDATES, site.home.id)[-1]
    assert (last["client"], last["result"], last["ipv4"], last["ipv6"]) == (
        "192.0.2.67",
        "nochg",
        "198.51.100.1",
        "2001:db8::1",
    )
    assert len(_rows(db, history.UPDATES, site.home.id)) == 3


def test_faults_enter_the_history_once_each(apps: list[Any], config: Config, db: Database, site: Site) -> None:
    app = _app(apps, config, db, min_interval=600, nochg_interval=600, status_refresh=3600, fault_limit=0)
    auth = (HOME, site.secrets[HOME])
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body == "good 198.51.100.1\n"
    # A change too soon: one row, the change's, marked with its fault.
    assert call(app, "/nic/update", {"myip": "198.51.100.2"}, auth=auth).body == "good 198.51.100.2\n"
    # A nochg too soon is answered without a write of its own: the fault's count writes its row.
    assert call(app, "/nic/update", {"myip": "198.51.100.2"}, auth=auth).body == "nochg 198.51.100.2\n"
    # Bad requests count against the host the credentials name.
    assert call(app, "/nic/update", {"myip": "bad"}, auth=auth).body == "badagent\n"
    assert call(app, "/nic/update", {"hostname": OFFICE}, auth=auth).body == "nohost\n"
    rows = _rows(db, history.UPDATES, site.home.id)
    assert [(r["result"], r["ipv4"], r["fault"]) for r in rows] == [
        ("good", "198.51.100.1", None),
        ("good", "198.51.100.2", "too-soon"),
        ("nochg", "198.51.100.2", "nochg-flood"),
        ("badagent", None, "bad-request"),
        ("nohost", None, "bad-request"),
    ]
    assert hosts.get(db, HOME).client_faults == 4
    assert _rows(db, history.UPDATES, site.office.id) == []


def test_nothing_recorded_when_nothing_is_kept(apps: list[Any], config: Config, db: Database, site: Site) -> None:
    app = _app(apps, config, db, history_kept=0, auth_trail_kept=0, nochg_interval=600, status_refresh=3600)
    auth = (HOME, site.secrets[HOME])
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body == "good 198.51.100.1\n"
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=auth).body == "nochg 198.51.100.1\n"
    assert call(app, "/nic/update", {}, auth=(HOME, "wrong")).body == "badauth\n"
    assert _rows(db, history.UPDATES, site.home.id) == []
    assert _rows(db, history.AUTH_FAILURES, site.home.id) == []
    assert hosts.get(db, HOME).client_faults == 1


def _flood(app: Any, login: str, count: int, clients: list[str], **params: str) -> list[str]:
    answers = []
    for n in range(count):
        client = clients[n % len(clients)]
        reply = call(app, "/nic/update", params, auth=(login, f"guess-{n}"), **_via_proxy(client, n % 2 == 0))
        answers.append(reply.body.strip())
    return answers


def test_wrong_secrets_are_recorded_against_the_host(apps: list[Any], config: Config, db: Database, site: Site) -> None:
    app = _app(apps, config, db, auth_failures_per_client=3, auth_trail_kept=50)
    clients = ["203.0.113.1", "203.0.113.2"]
    answers = _flood(app, HOME, 10, clients)
    assert answers == ["badauth"] * 6 + ["abuse"] * 4
    rows = _rows(db, history.AUTH_FAILURES, site.home.id)
    # Every failure counted is recorded, the one that took a client to its limit as such; the failures past
    # the limit are neither counted nor recorded (a flood from one address costs no write).
    assert [(r["client"], r["tls"], r["reason"]) for r in rows] == [
        ("203.0.113.1", 1, "wrong-secret"),
        ("203.0.113.2", 0, "wrong-secret"),
        ("203.0.113.1", 1, "wrong-secret"),
        ("203.0.113.2", 0, "wrong-secret"),
        ("203.0.113.1", 1, "client-limit"),
        ("203.0.113.2", 0, "client-limit"),
    ]
    # Never the secret tried.
    assert not any("guess" in str(value) for row in rows for value in row.values())
    # A user name with a wrong secret counts against the hosts the request names, none other.
    assert _flood(app, "alice", 1, ["198.51.100.9"], hostname=OFFICE) == ["badauth"]
    assert _flood(app, "alice", 1, ["198.51.100.9"]) == ["badauth"]
    assert [r["reason"] for r in _rows(db, history.AUTH_FAILURES, site.office.id)] == ["wrong-secret"]
    assert len(_rows(db, history.AUTH_FAILURES, site.home.id)) == 6
    # Failed logins change nothing in the update history.
    assert _rows(db, history.UPDATES, site.home.id) == []


def test_a_guarded_weak_password_is_recorded_up_to_the_trail(
    apps: list[Any], config: Config, db: Database, site: Site
) -> None:
    app = _app(apps, config, db, auth_failures_per_client=0, auth_failures_per_account=3, auth_trail_kept=4)
    legacy = passwords._context().handler("sha512_crypt").hash("old-router-password")
    hosts.set_secret_hash(db, site.home.id, legacy)
    answers = _flood(app, HOME, 12, [f"203.0.113.{n}" for n in range(1, 13)])
    assert answers == ["badauth"] * 3 + ["abuse"] * 9
    reasons = [r["reason"] for r in _rows(db, history.AUTH_FAILURES, site.home.id)]
    # The checks that failed, then the guesses not checked, as many as the trail keeps per window.
    assert reasons == ["wrong-secret"] * 3 + ["weak-guard"] * 4


def test_prune_keeps_the_last_of_each_host(config: Config, db: Database, site: Site, capsys: Any) -> None:
    def fill(tx: Any) -> None:
        for n in range(30):
            for host_id in (site.home.id, site.office.id):
                row = history.update_row(
                    host_id,
                    1000 + n,
                    client=f"192.0.2.{n}",
                    tls=False,
                    result="good",
                    ipv4=f"198.51.100.{n}",
                    ipv6=None,
                )
                history.add_update_tx(tx, row)
            history.add_auth_failures_tx(
                tx, [site.home.id], 1000 + n, client=f"192.0.2.{n}", tls=True, reason="wrong-secret", keep=1000
            )
        history.add_update_tx(
            tx, history.update_row(site.other.id, 1, client=None, tls=False, result="web", ipv4=None, ipv6=None)
        )

    db.run(fill)
    config = config.replace("updater", history_kept=5, auth_trail_kept=3)
    assert cli.cmd_prune(config, None) == 0  # type: ignore[arg-type]
    assert "pruned 50 host updates and 27 failed logins" in capsys.readouterr().out
    for host_id in (site.home.id, site.office.id):
        assert [r["ipv4"] for r in _rows(db, history.UPDATES, host_id)] == [f"198.51.100.{n}" for n in range(25, 30)]
    assert len(_rows(db, history.UPDATES, site.other.id)) == 1
    assert [e.client for e in history.recent_auth_failures(db, site.home.id, 10)] == [
        "192.0.2.29",
        "192.0.2.28",
        "192.0.2.27",
    ]
    assert [e.ipv4 for e in history.recent_updates(db, site.home.id, 2)] == ["198.51.100.29", "198.51.100.28"]
    # Nothing more to trim; 0 keeps nothing.
    assert history.prune(db, updates_kept=5, failures_kept=3) == (0, 0)
    assert history.prune(db, updates_kept=0, failures_kept=0) == (11, 3)


def test_a_trail_is_trimmed_as_it_grows(db: Database, site: Site) -> None:
    """A flood of failures against one host keeps its trail near ``keep`` rows without waiting for prune."""
    for n in range(200):
        db.run(
            lambda tx, n=n: history.add_auth_failures_tx(
                tx, [site.home.id], n, client="203.0.113.1", tls=False, reason="wrong-secret", keep=5
            )
        )
    count = len(_rows(db, history.AUTH_FAILURES, site.home.id))
    assert 5 <= count < 10
    assert history.recent_auth_failures(db, site.home.id, 1)[0].created_at == 199


def test_a_deleted_host_takes_its_history_along(apps: list[Any], config: Config, db: Database, site: Site) -> None:
    app = _app(apps, config, db)
    assert call(app, "/nic/update", {"myip": "198.51.100.1"}, auth=(HOME, site.secrets[HOME])).body.startswith("good")
    assert call(app, "/nic/update", {}, auth=(HOME, "wrong")).body == "badauth\n"
    hosts.delete(db, site.home.id)
    assert _rows(db, history.UPDATES, site.home.id) == [] and _rows(db, history.AUTH_FAILURES, site.home.id) == []
