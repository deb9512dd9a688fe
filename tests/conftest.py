"""Fixtures every test may use: a migrated database per dialect, a configuration, free ports."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ddserver.config import Config
from ddserver.db import Database
from tests import support
from tests.blackhole import BlackholeProxy, Threads


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``xdist_group`` group again: pytest-xdist (3.8) appends ``@group`` to ``item._nodeid``, which
    pytest 9 no longer reads (a node's id is in ``_id``), so grouped tests were spread over the workers."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = {
            str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")
        }
        node_id = getattr(item, "_id", None)
        if names and "@" not in item.nodeid and hasattr(type(node_id), "parse"):
            item._id = type(node_id).parse(f"{item.nodeid}@{'_'.join(sorted(names))}")  # type: ignore[attr-defined]


# Tables in the order they can be emptied without breaking foreign keys.
_TABLES = (
    "sessions",
    "tokens",
    "records",
    "zone_users",
    "hosts",
    "changes",
    "events",
    "settings",
    "users",
    "zones",
)


@pytest.fixture(autouse=True)
def _snapshot_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recursors started by a test keep their snapshots in a folder of the test's own (made when first
    written), never in the machine's /var/lib/ddserver/recursor or another test's."""
    folder = tmp_path_factory.getbasetemp() / f"snapshots-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DDSERVER_RECURSOR_SNAPSHOT_DIR", str(folder))


@pytest.fixture(autouse=True)
def _root_logger() -> Iterator[None]:
    """A console script's main run in-process (``cli.main``) sets the root logger up as the process's own;
    put it back, so that later tests' servers (aiosmtpd, threads) do not log to the worker's stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def _mysql_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database | None]:
    """One migrated MariaDB database per test worker, dropped at the end."""
    if not support.mysql_available():
        yield None
        return
    db = support.create_database(support.new_database_url("mysql", tmp_path_factory.mktemp("mysql")))
    try:
        yield db
    finally:
        db.drop_database()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(dialect: str, tmp_path: Path, _mysql_database: Database | None) -> Iterator[Database]:
    """An empty, migrated database of each dialect (the test runs once per dialect)."""
    if dialect == "sqlite":
        database = support.create_database(support.new_database_url("sqlite", tmp_path))
        yield database
        database.close_all()
        return
    if _mysql_database is None:
        support.missing(f"MariaDB/MySQL is not reachable at {support.mysql_base()}")
    assert _mysql_database is not None
    database = Database(_mysql_url(_mysql_database))
    _empty(database)
    yield database
    database.close_all()


def _mysql_url(db: Database) -> str:
    u = db.url
    auth = u.user + (f":{u.password}" if u.password else "")
    query = f"?unix_socket={u.unix_socket}" if u.unix_socket else ""
    return f"mysql://{auth}@{u.host}:{u.port}/{u.database}{query}"


def _empty(db: Database) -> None:
    def run(tx) -> None:  # type: ignore[no-untyped-def]
        # Every table the migrations made, whoever added it, except the record of the migrations.
        tables = [
            row[0]
            for row in tx.tuples(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name <> 'schema_version'"
            )
        ]
        tx.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in tables:
            tx.execute(f"DELETE FROM `{table}`")
        tx.execute("SET FOREIGN_KEY_CHECKS = 1")

    db.run(run)


@pytest.fixture
def db_url(db: Database) -> str:
    """The URL of the ``db`` fixture's database, for processes started by the test."""
    return _mysql_url(db) if db.dialect == "mysql" else f"sqlite:///{db.url.path}"


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return support.make_config(db_url, tmp_path)


@pytest.fixture
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.PrivateMariaDB]:
    """A running mariadbd of the test's own (``.stop()``, ``.start()``, ``.kill()``, ``.url(name)``)."""
    server = support.PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def blackhole(db: Database) -> Iterator[BlackholeProxy]:
    """A proxy to the ``db`` fixture's server that can go silent (``.blackhole()``, ``.restore()``, ``.url(url)``)."""
    with BlackholeProxy(db.url.host, db.url.port) as proxy:
        yield proxy


@pytest.fixture
def threads(blackhole: BlackholeProxy) -> Iterator[Threads]:
    """Single-thread pools (``.new()``), let go of before the proxy closes, which ends any call still hanging."""
    made = Threads()
    yield made
    made.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures tests recorded with ``record_property("figure", ...)`` (the cluster tests do), even under
    xdist: defined here rather than in tests/cluster/ so that the controller of an xdist run has it."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            lines += [f"{report.nodeid}: {v}" for k, v in getattr(report, "user_properties", []) if k == "figure"]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
