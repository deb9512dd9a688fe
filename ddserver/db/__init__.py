"""One small interface over MySQL/MariaDB (pymysql) and SQLite: connections per thread, transactions, retries.

SQL is written once with ``?`` placeholders and converted for pymysql; every value is passed as a parameter.
"""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ddserver.errors import ConfigError, DatabaseError, DatabaseTimeout, DatabaseUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = dict[str, Any]

# pymysql error numbers that mean the connection is gone (client side 2xxx) or the server is going away.
_MYSQL_LOST = {2003, 2006, 2013, 2014, 2055, 1053, 1927, 4031}
# Deadlock and lock wait timeout: the whole transaction may be run again.
_MYSQL_RETRY = {1213, 1205}


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL."""

    dialect: str
    path: str = ""
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = ""
    unix_socket: str | None = None

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        """Parse ``sqlite:///path`` or ``mysql://user:password@host:port/db?unix_socket=...``.

        :raises ConfigError: when the URL is not of either form (the password is never shown).
        """
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not path:
                raise ConfigError("config: [database] url: expected sqlite:///PATH")
            return cls(dialect="sqlite", path=path)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ConfigError(
                "config: [database] url: expected sqlite:///PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        query = urllib.parse.parse_qs(parts.query)
        database = urllib.parse.unquote(parts.path.lstrip("/"))
        if not database:
            raise ConfigError("config: [database] url: the MySQL URL names no database (mysql://.../DATABASE)")
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigError("config: [database] url: the port is not a number")
        return cls(
            dialect="mysql",
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=urllib.parse.unquote(parts.username or "root"),
            password=urllib.parse.unquote(parts.password or ""),
            database=database,
            unix_socket=query["unix_socket"][0] if query.get("unix_socket") else None,
        )

    def describe(self) -> str:
        """Where the database is, without the password, for messages."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"mysql://{self.user}@{where}/{self.database}"


@functools.lru_cache(maxsize=1024)
def _to_pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _timed_out(exc: BaseException) -> bool:
    """Whether a pymysql error comes from a socket timeout (pymysql keeps it only as the error's context)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _rows(cur: Any) -> list[tuple]:
    """The rows of the statement the cursor has just run (none for a statement without a result)."""
    return [tuple(row) for row in cur.fetchall()] if cur.description else []


class Transaction:
    """A cursor inside one transaction; rows come back as dicts."""

    def __init__(self, db: Database, conn: Any) -> None:
        self.db = db
        self.dialect = db.dialect
        self._conn = conn
        self._cur = conn.cursor()
        self.rowcount = 0
        self.lastrowid: int | None = None
        #: A statement that opens the transaction, sent in front of the first one (multi-statement connections).
        self.opening: str | None = None
        #: The transaction was committed by ``script(..., commit=True)``.
        self.committed = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Transaction:
        skip = 0
        if self.dialect == "mysql":
            opening = self._take_opening()
            sql, skip = "; ".join([*opening, _to_pyformat(sql)]), len(opening)
        self.db._execute(self._cur, sql, params, skip=skip)
        self.rowcount = self._cur.rowcount
        self.lastrowid = self._cur.lastrowid
        return self

    def script(self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False) -> list[list[tuple]]:
        """Run ``statements`` in order and return each one's rows (none for those without a result).

        On a multi-statement MySQL connection they go in one round trip, with the transaction's opening in
        front and, with ``commit``, its COMMIT behind; elsewhere one by one (the commit at the block's end).
        """
        if not statements:
            return []
        if self.dialect != "mysql" or not self.db.multi_statements:
            return [_rows(self.execute(sql, params)._cur) for sql, params in statements]
        opening = self._take_opening()
        parts = [*opening, *(_to_pyformat(sql) for sql, _ in statements)]
        skip = len(opening)
        if commit:
            parts.append("COMMIT")
        params = [value for _, values in statements for value in values]
        results: list[list[tuple]] = []
        self.db._execute(
            self._cur,
            "; ".join(parts),
            params,
            skip=skip,
            each=lambda cur: results.append(_rows(cur)),
            count=len(statements),
        )
        self.committed = commit
        return results

    def _take_opening(self) -> list[str]:
        """The statement that opens the transaction, if it is still to be sent, as a list of zero or one: it
        goes in front of the next request, whose results then skip it."""
        opening, self.opening = self.opening, None
        return [] if opening is None else [opening]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Transaction:
        if self.dialect == "mysql":
            sql = _to_pyformat(sql)
        self.db._execute(self._cur, sql, rows, many=True)
        self.rowcount = self._cur.rowcount
        return self

    def _columns(self) -> list[str]:
        return [d[0] for d in self._cur.description or ()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.execute(sql, params)
        row = self._cur.fetchone()
        return None if row is None else dict(zip(self._columns(), row, strict=True))

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.execute(sql, params)
        cols = self._columns()
        return [dict(zip(cols, row, strict=True)) for row in self._cur.fetchall()]

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: the cheap form for bulk loads."""
        self.execute(sql, params)
        return [tuple(row) for row in self._cur.fetchall()]

    def iter_tuples(self, sql: str, params: Sequence[Any] = (), size: int = 10000) -> Iterator[tuple[Any, ...]]:
        self.execute(sql, params)
        while True:
            rows = self._cur.fetchmany(size)
            if not rows:
                return
            yield from rows

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.execute(sql, params)
        row = self._cur.fetchone()
        return None if row is None else row[0]

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT and return the new row's id."""
        self.execute(sql, params)
        assert self.lastrowid is not None  # both drivers set it after an INSERT
        return int(self.lastrowid)


def _galera(cursor: Any) -> bool:
    """Whether the server is a Galera node (MySQL has no such variable: an empty answer)."""
    cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
    row = cursor.fetchone()
    return bool(row) and str(row[1]).upper() == "ON"


def _mariadb_returning(version: str) -> bool:
    """Whether a MySQL-protocol server's version string is a MariaDB of 10.5 or later."""
    if "mariadb" not in version.lower():
        return False
    # MariaDB 10 put "5.5.5-" in front of its version for old MySQL clients.
    parts = version.removeprefix("5.5.5-").split("-", 1)[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= (10, 5)
    except (IndexError, ValueError):
        return False


class Database:
    """The shared database: one connection per thread, opened on first use and reopened after a loss.

    On MySQL every wait is bounded, so that a silent link (a partition that drops packets without refusing
    anything) ends in ``DatabaseTimeout`` rather than a hang; the connection it hit is closed, never used again.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: float = 3,
        read_timeout: float = 60,
        *,
        multi_statements: bool = False,
        causal_reads: str = "auto",
    ) -> None:
        """:param connect_timeout: seconds a new MySQL connection may take to open, login included.
        :param read_timeout: seconds to wait for each read or write on an open MySQL connection (a statement's
            answer, or the next part of it).
        :param multi_statements: MySQL connections that take several statements per round trip
            (``Transaction.script``); only for a writer whose every statement is parameterised here.
        :param causal_reads: ``auto``, ``yes`` or ``no``: Galera's ``wsrep_sync_wait = 1`` on every MySQL
            connection (``auto``: when the server is a Galera node)."""
        self.url = DatabaseUrl.parse(url)
        self._url_text = url
        self.dialect = self.url.dialect
        self.multi_statements = multi_statements and self.dialect == "mysql"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.causal_reads = causal_reads
        self._local = threading.local()
        self._all: set[Any] = set()
        self._lock = threading.Lock()
        #: ``INSERT ... RETURNING``: SQLite 3.35 and MariaDB 10.5 have it, MySQL has not (known once connected).
        self.returning = self.dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)

    @classmethod
    def from_config(cls, config: Any, *, serving: bool = False) -> Database:
        """The database of ``config``'s [database] section.

        :param serving: for the apps that answer requests (interface, updater): each read waits
            ``read_timeout`` at most, so a request is answered in seconds; other programs (commands, the
            recursor, the RFC 2136 worker) wait ``job_read_timeout``, long enough for their big reads.
        """
        section = config.database
        read_timeout = section.read_timeout if serving else section.job_read_timeout
        return cls(
            section.url,
            connect_timeout=section.connect_timeout,
            read_timeout=read_timeout,
            causal_reads=section.causal_reads,
        )

    def with_multi_statements(self) -> Database:
        """The same database through connections of their own that take several statements per round trip
        (MySQL); SQLite has no round trips to save: itself."""
        if self.dialect != "mysql" or self.multi_statements:
            return self
        return Database(
            self._url_text,
            self.connect_timeout,
            self.read_timeout,
            multi_statements=True,
            causal_reads=self.causal_reads,
        )

    def __repr__(self) -> str:
        return f"<Database {self.url.describe()}>"

    # -- connections -------------------------------------------------------------------------------

    def _connect(self, with_database: bool = True) -> Any:
        if self.dialect == "sqlite":
            path = Path(self.url.path)
            if not path.parent.exists():
                raise DatabaseUnavailable(f"database: folder {path.parent} does not exist")
            try:
                conn = sqlite3.connect(
                    str(path),
                    timeout=max(self.connect_timeout, 30),
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(f"database: cannot open {path}: {exc}")
            return conn
        import pymysql
        from pymysql.constants import CLIENT

        try:
            mysql = pymysql.connect(
                host=self.url.host,
                port=self.url.port,
                user=self.url.user,
                password=self.url.password,
                database=self.url.database if with_database else None,
                unix_socket=self.url.unix_socket,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=self.connect_timeout,
                # pymysql waits for the server's greeting and the login with the read and write timeouts:
                # while connecting they are connect_timeout, and read_timeout once connected (below).
                read_timeout=self.connect_timeout,
                write_timeout=self.connect_timeout,
                init_command="SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
                client_flag=CLIENT.MULTI_STATEMENTS if self.multi_statements else 0,
            )
            try:
                cur = mysql.cursor()
                # Fresh reads in every statement, and fewer gap locks between concurrent writers.
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                if self.causal_reads == "yes" or (self.causal_reads == "auto" and _galera(cur)):
                    # A Galera node applies other nodes' commits a moment after they were acknowledged: without
                    # this, an update sent here right after another node answered one reads the old row (and
                    # is answered nochg), and a follower's poll misses what was already acknowledged.
                    cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.close()
                self.returning = _mariadb_returning(mysql.get_server_info())
            except BaseException:
                mysql.close()
                raise
            # pymysql has no public setter; it applies these to the socket before its next read or write.
            mysql._read_timeout = mysql._write_timeout = self.read_timeout  # type: ignore[attr-defined]
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code in (1044, 1045, 1049):
                raise DatabaseError(f"database: {self.url.describe()}: {exc.args[1]}")
            if _timed_out(exc):
                raise DatabaseTimeout(
                    f"database: {self.url.describe()} did not answer within {self.connect_timeout:g} s (connecting)"
                )
            raise DatabaseUnavailable(f"database: cannot connect to {self.url.describe()}: {exc.args[-1]}")
        except (pymysql.err.Error, OSError) as exc:
            raise DatabaseUnavailable(f"database: cannot connect to {self.url.describe()}: {exc}")
        return mysql

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.add(conn)
            # Servers end idle threads and start new ones (granian does, after blocking_threads_idle_timeout):
            # when this thread's locals go, its connection is closed, instead of staying open in _all.
            owner = _Owner()
            # A weak reference: a bound method would keep this Database (and so every thread's connection)
            # alive for as long as the thread, even after its user let go of it.
            weakref.finalize(owner, _forget_connection, weakref.ref(self), conn)
            self._local.owner = owner
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._all.discard(conn)
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is broken already; closing is best effort
                pass

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    def close_all(self) -> None:
        """Close every connection this object opened (at shutdown)."""
        with self._lock:
            conns, self._all = list(self._all), set()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
        self._local = threading.local()

    # -- errors ------------------------------------------------------------------------------------

    def _execute(
        self,
        cur: Any,
        sql: str,
        params: Any,
        many: bool = False,
        *,
        skip: int = 0,
        each: Callable[[Any], None] | None = None,
        count: int = 0,
    ) -> None:
        """Run ``sql``; of a multi-statement one, pass over the first ``skip`` results and hand the next
        ``count`` to ``each``, reading any that follow (a COMMIT's)."""
        try:
            if many:
                cur.executemany(sql, params)
            else:
                cur.execute(sql, params)
            for _ in range(skip):
                cur.nextset()
            if each is not None:
                for n in range(count):
                    if n:
                        cur.nextset()
                    each(cur)
                while cur.nextset():
                    pass
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Retry(str(exc))
            raise DatabaseError(f"database: {exc}")
        except Exception as exc:
            self._translate(exc)
            raise

    def _translate(self, exc: BaseException) -> None:
        """Turn a pymysql error into ddserver's, or return to let it propagate (integrity errors)."""
        if self.dialect != "mysql":
            return
        import pymysql

        if isinstance(exc, pymysql.err.IntegrityError):
            return
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError):
            code = exc.args[0] if exc.args else 0
            if code in _MYSQL_RETRY:
                raise _Retry(str(exc))
            if code in _MYSQL_LOST:
                # pymysql closed the connection already (after a timeout, what the server sends later must
                # never be read as the answer to another statement): the next use opens a new one.
                self._drop()
                if _timed_out(exc):
                    raise self._timeout_error()
                raise DatabaseUnavailable(f"database: lost connection to {self.url.describe()}")
            raise DatabaseError(f"database: {exc.args[-1] if exc.args else exc}")
        if isinstance(exc, pymysql.err.InterfaceError | OSError | AttributeError | ConnectionError):
            # pymysql raises InterfaceError (0, '') on a closed connection, and AttributeError when its
            # socket is already gone.
            self._drop()
            if _timed_out(exc):
                raise self._timeout_error()
            raise DatabaseUnavailable(f"database: lost connection to {self.url.describe()}")
        if isinstance(exc, pymysql.err.Error):
            raise DatabaseError(f"database: {exc}")

    def _timeout_error(self) -> DatabaseTimeout:
        return DatabaseTimeout(f"database: {self.url.describe()} did not answer within {self.read_timeout:g} s")

    def is_integrity_error(self, exc: BaseException) -> bool:
        if isinstance(exc, sqlite3.IntegrityError):
            return True
        if self.dialect == "mysql":
            import pymysql

            return isinstance(exc, pymysql.err.IntegrityError)
        return False

    # -- transactions ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        """One transaction on this thread's connection, committed at the end of the block.

        Writes on SQLite take the write lock at the start (``BEGIN IMMEDIATE``), so two writers never
        deadlock upgrading a read lock.
        """
        conn = self._connection()
        tx = Transaction(self, conn)
        try:
            if self.dialect == "sqlite":
                tx._cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            elif self.multi_statements:
                # Sent with the first statement: one round trip fewer.
                tx.opening = "START TRANSACTION" if write else "START TRANSACTION READ ONLY"
            else:
                tx._cur.execute("START TRANSACTION" if write else "START TRANSACTION READ ONLY")
        except sqlite3.OperationalError as exc:
            raise _Retry(str(exc))
        except Exception as exc:
            self._translate(exc)
            raise
        try:
            yield tx
        except BaseException:
            try:
                if tx.opening is not None:
                    pass  # nothing was sent
                elif self.dialect == "mysql":
                    conn.rollback()
                else:
                    tx._cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the original error matters more than a failed rollback
                self._drop()
            raise
        else:
            try:
                if tx.committed or tx.opening is not None:
                    pass  # committed by the last script, or nothing was sent
                elif self.dialect == "mysql":
                    conn.commit()
                else:
                    tx._cur.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise DatabaseError(f"database: commit failed: {exc}")
            except Exception as exc:
                self._translate(exc)
                raise
        finally:
            tx._cur.close()

    def run(self, fn: Callable[[Transaction], T], write: bool = True, attempts: int = 6) -> T:
        """Run ``fn(tx)`` in a transaction, again after a deadlock, and once more after a lost connection (not
        after a timeout, which another try would only repeat: a silent database costs one timeout, not two).

        ``fn`` must have no effect outside the database: it may run more than once.
        """
        lost = 0
        for attempt in range(attempts):
            try:
                with self.transaction(write=write) as tx:
                    return fn(tx)
            except _Retry:
                if attempt == attempts - 1:
                    raise DatabaseError("database: gave up after repeated deadlocks or lock timeouts")
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            except DatabaseTimeout:
                raise  # a silent link: another try would wait as long again
            except DatabaseUnavailable:
                lost += 1
                if lost > 1:
                    raise
        raise DatabaseError("database: transaction failed")  # pragma: no cover - the loop returns or raises

    def read(self, fn: Callable[[Transaction], T]) -> T:
        return self.run(fn, write=False)

    def query(self, fn: Callable[[Transaction], T]) -> T:
        """Run the reads of ``fn(tx)`` without a transaction around them: each statement sees what was committed
        when it started, as in a READ COMMITTED read transaction, with two round trips fewer (no START and
        COMMIT). For hot read paths of one or a few independent statements; again once after a lost connection
        (not after a timeout).
        """
        for attempt in range(2):
            tx = Transaction(self, self._connection())
            try:
                return fn(tx)
            except DatabaseTimeout:
                raise
            except DatabaseUnavailable:
                if attempt:
                    raise
            finally:
                tx._cur.close()
        raise DatabaseError("database: query failed")  # pragma: no cover - the loop returns or raises

    # -- set-up ------------------------------------------------------------------------------------

    def create_database(self) -> bool:
        """Create the MySQL database if it is missing (SQLite creates its file by itself).

        :returns: True if it was created.
        """
        if self.dialect != "mysql":
            return False
        import pymysql

        try:
            conn = self._connect(with_database=True)
            conn.close()
            return False
        except DatabaseError:
            pass
        conn = self._connect(with_database=False)
        try:
            with conn.cursor() as cur:
                name = self.url.database.replace("`", "``")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        except pymysql.err.Error as exc:
            raise DatabaseError(f"database: cannot create {self.url.database}: {exc.args[-1]}")
        finally:
            conn.close()
        return True

    def drop_database(self) -> None:
        """Drop the whole database (tests only)."""
        self.close_all()
        if self.dialect == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(self.url.path + suffix).unlink(missing_ok=True)
            return
        conn = self._connect(with_database=False)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.url.database.replace('`', '``')}`")
        finally:
            conn.close()


def _forget_connection(ref: weakref.ref[Database], conn: Any) -> None:
    db = ref()
    if db is not None:
        with db._lock:
            db._all.discard(conn)
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closed already (dropped after an error), or broken: nothing to do
        pass


class _Owner:
    """Lives in a thread's locals next to its connection; its finalizer closes the connection with the thread."""


class _Retry(DatabaseError):
    """The transaction hit a deadlock or lock timeout and may be run again."""
