"""Test helpers every component's tests share: real components, free ports, and processes that always stop."""

from __future__ import annotations

import atexit
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ddserver.config import Config, load_config
from ddserver.db import Database
from ddserver.db import migrate as migrations
from ddserver.errors import DatabaseError

#: Under CI a real component that cannot start fails the run instead of skipping the test.
CI = os.environ.get("CI", "").lower() == "true"
MYSQL_URL = os.environ.get("DDSERVER_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_counter = itertools.count()


def missing(what: str) -> None:
    """A real component is not available: skip the test, or fail it under CI."""
    if CI:
        pytest.fail(f"{what} (CI=true: a missing real component is a failure)", pytrace=False)
    pytest.skip(what)


def require_binary(name: str, *extra_paths: str) -> str:
    """The path of a program from PATH, /usr/sbin or the given paths; skips or fails when missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    for path in extra_paths:
        if not found and Path(path).exists():
            found = path
    if not found:
        missing(f"{name} is not installed")
    assert found
    return found


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


_EPHEMERAL = _ephemeral_ports()
# Its own generator: tests that seed the shared one must not make two workers pick the same ports.
_RANDOM = random.SystemRandom()


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port free for ``kind`` right now, outside the kernel's ephemeral range: a port there (what binding
    port 0 gives) may be taken as the local port of any outgoing connection before the server binds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        port = _RANDOM.randrange(10000, 65536)
        if port in _EPHEMERAL:
            continue
        with socket.socket(family, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_dns_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP, as a DNS server needs."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free DNS port")


def wait_until(check: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> object:
    """Poll ``check`` until it returns something true; raise with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ProcessExited:
            raise
        except Exception as exc:  # noqa: BLE001 - the check may fail until the thing is ready
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or check}: last error {last_error!r}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            # With nothing listening, a connect to a port in the ephemeral range can, rarely, be given that
            # very port as its own and connect to itself (TCP simultaneous open): that is no server.
            return sock.getsockname() != sock.getpeername()
    except OSError:
        return False


class ProcessExited(RuntimeError):
    """The server process being waited for is gone: waiting longer cannot help."""


class Process:
    """A server process in its own process group, logging to a file, stopped whatever happens."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, check: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
        def ready() -> object:
            if not self.alive():
                raise ProcessExited(f"{self.argv[0]} exited with {self.proc.returncode}")
            return check()

        try:
            wait_until(ready, timeout=timeout, what=what or f"{self.argv[0]} to start")
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n--- log ---\n{self.log()[-3000:]}") from None

    def wait_port(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.wait_for(lambda: port_open(host, port), timeout, f"{self.argv[0]} to listen on {host}:{port}")

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        # Children in the group (pipe backends of a pdns_server, say) go too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mysql_base() -> str:
    return MYSQL_URL if MYSQL_URL.endswith("/") else MYSQL_URL + "/"


def mysql_available() -> bool:
    try:
        probe = Database(mysql_base() + "mysql", connect_timeout=3)
        probe.read(lambda tx: tx.scalar("SELECT 1"))
        probe.close_all()
        return True
    except DatabaseError:
        return False


def new_database_url(dialect: str, folder: Path) -> str:
    """A URL for a database that does not exist yet, unique to this test run and worker."""
    if dialect == "sqlite":
        return f"sqlite:///{folder / f'ddserver-{next(_counter)}.sqlite3'}"
    if not mysql_available():
        missing(f"MariaDB/MySQL is not reachable at {mysql_base()} (set DDSERVER_TEST_MYSQL_URL)")
    return f"{mysql_base()}ddtest_{os.getpid()}_{WORKER}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


def create_database(url: str) -> Database:
    db = Database(url)
    migrations.migrate(db)
    return db


def rows_naming(db: Database, texts: Sequence[str], ids: Sequence[int] = ()) -> list[tuple[str, str, str]]:
    """Every (table, column, value) in the database whose text contains one of ``texts``, or whose
    ``user_id``/``actor_id`` column is one of ``ids``: every table is read, so tables added later count too."""
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    found = []
    for (table,) in db.read(lambda tx: tx.tuples(sql)):
        quoted = f"`{table}`" if db.dialect == "mysql" else f'"{table}"'
        for row in db.read(lambda tx, q=quoted: tx.all(f"SELECT * FROM {q}")):
            for column, value in dict(row).items():
                column = str(column).lower()
                if column in ("user_id", "actor_id") and value in ids:
                    found.append((str(table), column, str(value)))
                if value is None or isinstance(value, int | float):
                    continue
                text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                if any(part in text for part in texts):
                    found.append((str(table), column, text))
    return found


def make_config(db_url: str, folder: Path, **sections: dict[str, object]) -> Config:
    """A configuration for tests: the given database, a fixed secret key, anything else from ``sections``."""
    config = load_config(env={})
    config = config.replace("database", url=db_url)
    config = config.replace("auth", secret_key="test-secret-key", secret_key_file=str(folder / "secret"))
    for section, values in sections.items():
        config = config.replace(section, **values)
    return config


def write_config_file(path: Path, db_url: str, extra: str = "") -> Path:
    # The data key next to the file, so that 'ddserver init' never writes one where the tests run from.
    data_key = "" if "data_key" in extra else f"data_key_file = {path.parent / 'ddserver.datakey'}\n"
    path.write_text(f"[database]\nurl = {db_url}\n\n[auth]\nsecret_key = test-secret-key\n{data_key}{extra}\n")
    return path


def python_bin() -> str:
    """The interpreter of the test run, whose venv has ddserver's console scripts."""
    import sys

    return sys.executable


def console_script(name: str) -> str:
    """The path of one of ddserver's console scripts in the test run's environment."""
    import sys

    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"console script {name} is not installed in {path.parent}", pytrace=False)
    return str(path)


class PrivateMariaDB:
    """A mariadbd of the test's own, in a temporary folder on a free port, that a test may stop and start.

    The machine's shared MariaDB is never touched; this one exists to go away in the middle of a test.
    """

    _template: Path | None = None

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.datadir = folder / "data"
        self.socket = folder / "mysqld.sock"
        self.port = free_port()
        self.process: Process | None = None
        self.mariadbd = require_binary("mariadbd")
        self._install()

    @classmethod
    def _template_dir(cls, base: Path) -> Path:
        # mariadb-install-db takes seconds; do it once per test process and copy the result.
        if cls._template is None or not cls._template.exists():
            installer = require_binary("mariadb-install-db")
            target = base / "template"
            result = subprocess.run(
                [
                    installer,
                    "--no-defaults",
                    f"--datadir={target}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                missing(f"mariadb-install-db failed: {result.stderr[-500:]}")
            cls._template = target
        return cls._template

    def _install(self) -> None:
        import tempfile

        base = Path(tempfile.gettempdir()) / f"ddserver-mariadb-template-{os.getpid()}"
        if not base.exists():
            base.mkdir()
            atexit.register(shutil.rmtree, base, ignore_errors=True)
        shutil.copytree(self._template_dir(base), self.datadir)

    @property
    def url_base(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/"

    def url(self, database: str = "ddserver") -> str:
        return self.url_base + database

    def start(self) -> None:
        if self.process is not None and self.process.alive():
            return
        argv = [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={self.folder}/pid",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=8M",
            "--skip-name-resolve",
            "--max-connections=200",
        ]
        self.process = Process(argv, log=self.folder / "mariadbd.log")
        self.process.wait_port("127.0.0.1", self.port, timeout=60)

    def stop(self) -> None:
        """Stop the server cleanly (clients see their connections drop)."""
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would."""
        if self.process is not None:
            self.process.signal(signal.SIGKILL)
            self.process.proc.wait(10)
            self.process.stop()
            self.process = None
