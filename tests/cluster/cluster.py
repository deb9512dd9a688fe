"""A ddserver cluster on one machine, a network namespace per node: MariaDB primary and replica, two updaters
behind HAProxy, two PowerDNS with their recursors, the RFC 2136 worker and a BIND (``scripts/cluster.sh``)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pymysql

from tests import support
from tests.named import NamedServer
from tests.pdns import pdns_conf

ROOT = Path(__file__).resolve().parents[2]
ZONE = "dyn.cluster.test"
#: Last byte of each node's address in 10.77.N.0/24 (.1 is the bridge, in the root namespace).
NODES = {"lb": 2, "db1": 11, "db2": 12, "web1": 21, "web2": 22, "ns1": 31, "ns2": 32, "bind": 41}
#: Where each cluster keeps its data, configuration and logs (ddserver-cluster-N); short, for unix sockets.
CLUSTERS_DIR = Path("/tmp")
STATE_NAME = "state.json"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ddserver-cluster"


class ClusterError(RuntimeError):
    """The cluster cannot be built or a step of it failed: the message says which."""


def run(
    argv: Sequence[str], *, timeout: float = 120, check: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise ClusterError(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


# -- software: wheels from the checkout, one venv per role, cached by the checkout's content


def checkout_key() -> str:
    """A key for what the wheels are built from: its trees in HEAD and any uncommitted change to them."""
    paths = ["ddserver", "setup.py", "packages"]
    tree = run(["git", "-C", ROOT, "ls-tree", "HEAD", "--", *paths]).stdout
    dirty = run(["git", "-C", ROOT, "diff", "HEAD", "--", *paths]).stdout
    return hashlib.sha256((tree + dirty).encode()).hexdigest()[:16]


#: What each role's venv installs from the wheels, as its machine would.
ROLES = {
    "web": ["ddserver-updater", "ddserver-bundle"],
    "recursor": ["ddserver-recursor"],
    "rfc2136": ["ddserver[rfc2136]"],
}


def venvs() -> dict[str, Path]:
    """The venv of each role, built from wheels of this checkout unless a previous run built them."""
    base = CACHE / checkout_key()
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test workers build once
        if not (base / "done").exists():
            _build_venvs(base)
            (base / "done").write_text("ok\n")
            _prune_cache(keep=base)
    return {role: base / role for role in ROLES}


def _prune_cache(keep: Path, count: int = 3) -> None:
    """Remove the environments of older checkouts but the ``count`` newest, unless one is being built."""
    built = sorted(
        (path for path in CACHE.iterdir() if (path / "done").exists() and path != keep),
        key=lambda path: (path / "done").stat().st_mtime,
    )
    for path in built[: max(0, len(built) - (count - 1))]:
        with open(path / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(path, ignore_errors=True)


def _build_venvs(base: Path) -> None:
    wheels = base / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT], timeout=600)
    for package in sorted((ROOT / "packages").iterdir()):
        run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, package], timeout=600)
    core = next(wheels.glob("ddserver-*.whl"))
    for role, wanted in ROLES.items():
        venv = base / role
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv])
        # The core by its file, so that pip never takes a ``ddserver`` of the same version from an index.
        extras = {w.split("[")[1].rstrip("]") for w in wanted if "[" in w}
        names = [w for w in wanted if not w.startswith("ddserver[")]
        core_req = (
            f"ddserver[{','.join(sorted(extras))}] @ {core.as_uri()}" if extras else f"ddserver @ {core.as_uri()}"
        )
        run([venv / "bin" / "pip", "install", "-q", "--find-links", wheels, core_req, *names], timeout=900)


# -- the cluster


def namespaces_available() -> bool:
    """Whether this process may create network namespaces (root, and a kernel and container that allow it)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = f"ddc-probe-{os.getpid()}"
    if run(["ip", "netns", "add", name], check=False).returncode != 0:
        return False
    run(["ip", "netns", "del", name], check=False)
    return True


def _pick_net() -> int:
    """A third byte N for 10.77.N.0/24 that no route, namespace or other cluster of this machine uses."""
    routes = run(["ip", "-o", "route"]).stdout + run(["ip", "-o", "addr"]).stdout
    taken = set(run(["ip", "netns", "list"]).stdout.split())
    for n in range(10, 250):
        if f"10.77.{n}." in routes or any(name.startswith(f"ddc{n}-") for name in taken):
            continue
        try:
            (CLUSTERS_DIR / f"ddserver-cluster-{n}").mkdir()  # claims N atomically
        except FileExistsError:
            continue
        return n
    raise ClusterError("no free 10.77.N.0/24 network")


class Cluster:
    """One cluster: its network number, folder, nodes' processes; saved in ``state.json`` for ``down``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.folder = CLUSTERS_DIR / f"ddserver-cluster-{n}"
        self.bridge = f"ddc{n}br"
        self.processes: dict[str, support.Process] = {}  # "node/name" -> process (this Python process only)
        self.state: dict[str, Any] = {"n": n, "pids": {}, "secrets": {}, "hosts": {}, "primary": "db1"}
        self.named: NamedServer | None = None

    # addresses and names

    def addr(self, node: str) -> str:
        return f"10.77.{self.n}.{NODES[node]}"

    def netns(self, node: str) -> str:
        return f"ddc{self.n}-{node}"

    def dir(self, node: str) -> Path:
        path = self.folder / node
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def net(self) -> str:
        return f"10.77.{self.n}.0/24"

    @property
    def primary(self) -> str:
        return str(self.state["primary"])

    def save(self) -> None:
        (self.folder / STATE_NAME).write_text(json.dumps(self.state, indent=1))

    @classmethod
    def load(cls, n: int) -> Cluster:
        cluster = cls(n)
        path = cluster.folder / STATE_NAME
        if path.exists():
            cluster.state = json.loads(path.read_text())
        return cluster

    # network

    def _network_up(self) -> None:
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"10.77.{self.n}.1/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for node in NODES:
            ns, outside = self.netns(node), f"ddc{self.n}{node}"
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(["ip", "link", "set", outside, "master", self.bridge, "up"])
            inside = ["ip", "netns", "exec", ns, "ip"]
            run([*inside, "link", "set", "lo", "up"])
            run([*inside, "addr", "add", f"{self.addr(node)}/24", "dev", "eth0"])
            run([*inside, "link", "set", "eth0", "up"])

    # processes

    def start(
        self, node: str, name: str, argv: Sequence[str | Path], *, env: dict[str, str] | None = None
    ) -> support.Process:
        """``argv`` in ``node``'s namespace, logging to NODE/NAME.log; its pid is saved for ``down``."""
        key = f"{node}/{name}"
        self._stop(key)
        process = support.Process(
            ["ip", "netns", "exec", self.netns(node), *map(str, argv)],
            log=self.dir(node) / f"{name}.log",
            env=env,
        )
        self.processes[key] = process
        self.state["pids"][key] = process.pid
        self.save()
        return process

    def _stop(self, key: str) -> None:
        """Stop the process ``key`` names, whether this Python process started it or another (``up``)."""
        old = self.processes.pop(key, None)
        if old is not None:
            old.stop()
        pid = self.state["pids"].pop(key, None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
                support.wait_until(
                    lambda: not Path(f"/proc/{pid}").exists() or _zombie(int(pid)), 10, what=f"{key} to stop"
                )

    def kill(self, node: str, name: str | None = None) -> None:
        """``kill -9`` one process of ``node``, or every process in its namespace (a node that dies)."""
        for key, process in list(self.processes.items()):
            if key.startswith(f"{node}/") and (name is None or key == f"{node}/{name}"):
                process.signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.proc.wait(10)
                process.stop()
        if name is None:
            self._kill_namespace(node)

    def _kill_namespace(self, node: str) -> None:
        result = run(["ip", "netns", "pids", self.netns(node)], check=False)
        for pid in result.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def down(self) -> None:
        """Stop every process of the cluster and remove its namespaces, bridge and folder."""
        for process in self.processes.values():
            process.stop(timeout=5)
        for pid in self.state.get("pids", {}).values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
        existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
        for node in NODES:
            if self.netns(node) in existing:
                self._kill_namespace(node)
        time.sleep(0.2)
        for node in NODES:
            if self.netns(node) in existing:
                run(["ip", "netns", "del", self.netns(node)], check=False)
        run(["ip", "link", "del", self.bridge], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    # MariaDB

    def db_socket(self, node: str) -> Path:
        return self.dir(node) / "mysqld.sock"

    def sql(
        self, node: str, statement: str, args: Sequence[object] = (), *, database: str | None = None
    ) -> list[tuple[Any, ...]]:
        """One statement on ``node``'s mariadbd as root, over its unix socket (no network needed)."""
        conn = pymysql.connect(
            unix_socket=str(self.db_socket(node)), user="root", database=database, connect_timeout=3, read_timeout=200
        )
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                rows = list(cur.fetchall())
            conn.commit()
            return rows
        finally:
            conn.close()

    def slave_status(self, node: str) -> dict[str, Any]:
        conn = pymysql.connect(unix_socket=str(self.db_socket(node)), user="root", connect_timeout=3)
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute("SHOW SLAVE STATUS")
                return dict(cur.fetchone() or {})
        finally:
            conn.close()

    def _my_cnf(self, node: str, *, read_only: bool) -> Path:
        folder = self.dir(node)
        server_id = {"db1": 1, "db2": 2}[node]
        path = folder / "my.cnf"
        path.write_text(
            "[mariadbd]\n"
            f"datadir = {folder / 'data'}\n"
            f"socket = {self.db_socket(node)}\n"
            f"pid-file = {folder / 'mariadbd.pid'}\n"
            f"bind-address = {self.addr(node)}\n"
            "port = 3306\n"
            "user = root\n"
            "skip-name-resolve\n"
            "innodb-buffer-pool-size = 32M\n"
            "innodb-log-file-size = 8M\n"
            "max-connections = 300\n"
            "# Replication: GTID, row-based, every node able to become the primary.\n"
            f"server-id = {server_id}\n"
            f"log-basename = {node}\n"
            "log-bin\n"
            "binlog-format = ROW\n"
            "log-slave-updates\n"
            "gtid-strict-mode = 1\n"
            "sync-binlog = 1\n"
            "# The replica applies group-committed transactions in parallel, as the primary committed them.\n"
            "slave-parallel-threads = 4\n"
            "slave-parallel-mode = optimistic\n"
            "# Semi-synchronous: the primary acknowledges a commit once the replica has it (lossless failover);\n"
            "# with the replica away for over a second it goes on alone and resumes when the replica is back.\n"
            "rpl-semi-sync-master-enabled = ON\n"
            "rpl-semi-sync-slave-enabled = ON\n"
            "rpl-semi-sync-master-wait-point = AFTER_SYNC\n"
            "rpl-semi-sync-master-timeout = 1000\n"
            f"read-only = {1 if read_only else 0}\n"
        )
        return path

    def start_db(self, node: str) -> None:
        process = self.start(
            node, "mariadbd", [support.require_binary("mariadbd"), f"--defaults-file={self.dir(node) / 'my.cnf'}"]
        )
        process.wait_port(self.addr(node), 3306, timeout=60)

    def _install_db(self, node: str) -> None:
        template = self.folder / "template"
        if not template.exists():
            run(
                [
                    support.require_binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={template}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                timeout=180,
            )
        shutil.copytree(template, self.dir(node) / "data")

    def _databases_up(self) -> None:
        pw = self.state["secrets"]
        for node in ("db1", "db2"):
            self._install_db(node)
            self._my_cnf(node, read_only=node == "db2")
            self.start_db(node)
        net = f"10.77.{self.n}.%"
        for statement in (
            "CREATE DATABASE ddserver CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            f"CREATE USER 'ddserver'@'{net}' IDENTIFIED BY '{pw['ddserver']}'",
            f"GRANT ALL ON ddserver.* TO 'ddserver'@'{net}'",
            f"CREATE USER 'recursor'@'{net}' IDENTIFIED BY '{pw['recursor']}'",
            f"GRANT SELECT ON ddserver.* TO 'recursor'@'{net}'",
            f"CREATE USER 'repl'@'{net}' IDENTIFIED BY '{pw['repl']}'",
            f"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'{net}'",
        ):
            self.sql("db1", statement)
        self.replicate("db2", "db1")

    def replicate(self, replica: str, source: str) -> None:
        """Make ``replica`` follow ``source`` by GTID."""
        self.sql(
            replica,
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            (self.addr(source), self.state["secrets"]["repl"]),
        )
        self.sql(replica, "START SLAVE")
        support.wait_until(
            lambda: self.slave_status(replica).get("Slave_IO_Running") == "Yes", 30, what=f"{replica} to replicate"
        )

    def wait_replica_caught_up(self, replica: str = "db2", timeout: float = 150) -> None:
        """Until ``replica`` has applied everything its primary had when this was called."""
        target = self.sql(self.primary, "SELECT @@gtid_binlog_pos")[0][0]
        result = self.sql(replica, "SELECT MASTER_GTID_WAIT(%s, %s)", (target, timeout))[0][0]
        if result != 0:
            raise ClusterError(f"{replica} did not reach {target} within {timeout} s")

    # configuration of the ddserver nodes

    def db_url(self, node: str, user: str) -> str:
        return f"mysql://{user}:{self.state['secrets'][user]}@{self.addr(node)}:3306/ddserver"

    def write_web_config(self, node: str) -> Path:
        path = self.dir(node) / "ddserver.conf"
        path.write_text(
            "[database]\n"
            f"url = {self.db_url(self.primary, 'ddserver')}\n"
            "connect_timeout = 2\n\n"
            "[auth]\n"
            f"secret_key = {self.state['secrets']['auth']}\n\n"
            "[http]\n"
            f"base_url = http://{self.addr('lb')}:8080\n"
            f"update_url = http://{self.addr('lb')}\n"
            f"trusted_proxies = {self.addr('lb')}\n\n"
            "[interface]\n"
            f"listen = {self.addr(node)}:8080\n\n"
            "[updater]\n"
            f"listen = {self.addr(node)}:8081\n"
            "workers = 1\n"
            "threads = 16\n"
            "# The test load changes each host many times a minute.\n"
            "min_interval = 0\n"
            "nochg_interval = 0\n"
            "fault_limit = 0\n"
            f"metrics_allow = {self.net}\n\n"
            "[rfc2136]\n"
            "poll_interval = 0.2\n"
            "retry_max = 5\n"
        )
        return path

    def write_ns_config(self, node: str, source: str) -> Path:
        folder = self.dir(node)
        path = folder / "ddserver.conf"
        path.write_text(
            "[database]\n"
            f"url = {self.db_url(source, 'recursor')}\n"
            "connect_timeout = 2\n\n"
            "[recursor]\n"
            "poll_interval = 0.2\n"
            "purge = socket\n"
            f"control_socket = {folder / 'pdns.controlsocket'}\n"
            f"snapshot_dir = {folder / 'snapshots'}\n"
            f"metrics = {self.addr(node)}:9153\n"
        )
        return path

    def ns_source(self, node: str) -> str:
        return str(self.state.get("ns_source", {}).get(node, "db2" if node == "ns1" else "db1"))

    # components

    def start_web(self, node: str) -> None:
        venv = Path(self.state["venvs"]["web"])
        conf = self.dir(node) / "ddserver.conf"
        updater = self.start(node, "updater", [venv / "bin" / "ddserver-updater", "--config", conf])
        if node == "web1":
            bundle = self.start(node, "bundle", [venv / "bin" / "ddserver-bundle", "--config", conf])
            bundle.wait_port(self.addr(node), 8080, timeout=60)
        updater.wait_port(self.addr(node), 8081, timeout=60)
        if node == "web2":
            worker = Path(self.state["venvs"]["rfc2136"]) / "bin" / "ddserver-rfc2136"
            self.start(node, "rfc2136", [worker, "--config", conf])

    def start_ns(self, node: str) -> None:
        folder = self.dir(node)
        sock = folder / "recursor.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        recursor_bin = Path(self.state["venvs"]["recursor"]) / "bin" / "ddserver-recursor"
        recursor = self.start(
            node, "recursor", [recursor_bin, "--config", folder / "ddserver.conf", "--remote-socket", sock]
        )
        recursor.wait_for(sock.exists, 60, "ddserver-recursor to open its socket")
        backend = (
            f"launch=remote\nremote-connection-string=unix:path={sock},timeout=2000\nzone-cache-refresh-interval=300\n"
        )
        (folder / "pdns.conf").write_text(
            pdns_conf(folder, 53, backend, cache=True, address=self.addr(node), distributor_threads=3)
        )
        pdns = self.start(
            node, "pdns", [support.require_binary("pdns_server", "/usr/sbin/pdns_server"), f"--config-dir={folder}"]
        )
        pdns.wait_for(lambda: self.dns_rcode(node, ZONE, "SOA") == "NOERROR", 60, f"{node} to answer")

    def write_haproxy(self) -> Path:
        folder = self.dir("lb")
        web = [("web1", self.addr("web1")), ("web2", self.addr("web2"))]
        lines = [
            "global",
            f"    stats socket {folder / 'haproxy.sock'} mode 600 level admin",
            "    maxconn 2000",
            "defaults",
            "    mode http",
            "    timeout connect 1s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    retries 2",
            "    option redispatch",
            "    option forwardfor",
            "frontend updates",
            f"    bind {self.addr('lb')}:80",
            "    default_backend updaters",
            "backend updaters",
            "    # A host's requests go to one updater (its credentials hash to it): each updater answers nochg",
            "    # from its own host cache, which follows the others' writes a poll interval late (docs/updater.md).",
            "    balance hdr(Authorization)",
            "    hash-type consistent",
            "    option httpchk GET /health",
            "    http-check expect status 200",
            "    option allbackups",
            "    default-server inter 500 fall 2 rise 2",
            *[f"    server {name} {address}:8081 check" for name, address in web],
            "    # The same updaters unchecked, used only while every check fails (the database is down):",
            "    # routers then hear the updater's own 911 rather than HAProxy's 503.",
            *[f"    server {name}-any {address}:8081 backup" for name, address in web],
            "frontend interface",
            f"    bind {self.addr('lb')}:8080",
            "    default_backend interface",
            "backend interface",
            "    option httpchk GET /health",
            f"    server web1 {self.addr('web1')}:8080 check inter 2000",
        ]
        path = folder / "haproxy.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_lb(self) -> None:
        cfg = self.write_haproxy()
        process = self.start("lb", "haproxy", [support.require_binary("haproxy"), "-db", "-f", cfg])
        process.wait_port(self.addr("lb"), 80, timeout=30)
        support.wait_until(lambda: self.lb_up() == {"web1", "web2"}, 30, what="HAProxy to see both updaters up")

    def lb_states(self) -> dict[str, str]:
        """HAProxy's view of each updater: UP, DOWN, ... (``show stat`` on its admin socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(str(self.dir("lb") / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        states = {}
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == "updaters" and fields[1] not in ("FRONTEND", "BACKEND"):
                states[fields[1]] = fields[17]
        return states

    def lb_up(self) -> set[str]:
        return {
            name for name, state in self.lb_states().items() if state.startswith("UP") and not name.endswith("-any")
        }

    def start_bind(self) -> None:
        named = ClusterNamed(self.dir("bind") / "named", self)
        named.start()
        self.named = named
        self.processes["bind/named"] = named.process  # type: ignore[assignment]
        self.state["pids"]["bind/named"] = named.process.pid if named.process else 0
        self.save()

    def ddserver(self, *args: str, stdin: str | None = None) -> str:
        """The admin command ``ddserver`` from web1's venv, run on web1."""
        cmd = [
            "ip", "netns", "exec", self.netns("web1"),
            Path(self.state["venvs"]["web"]) / "bin" / "ddserver", "--config", self.dir("web1") / "ddserver.conf", *args,
        ]  # fmt: skip
        return run(cmd, input=stdin, timeout=120).stdout

    # the whole cluster

    def up(self, *, hosts: int = 0, out: Any = None) -> None:
        """Build every node; ``hosts`` update hosts are added (their secrets kept in the state)."""
        say = (lambda text: print(text, file=out, flush=True)) if out else (lambda text: None)
        started = time.monotonic()
        for binary in ("mariadbd", "mariadb-install-db", "haproxy", "named", "pdns_server"):
            support.require_binary(binary)
        self.state["secrets"] = {k: secrets.token_hex(12) for k in ("ddserver", "recursor", "repl", "auth")}
        self.state["venvs"] = {role: str(path) for role, path in venvs().items()}
        say(f"venvs ready ({time.monotonic() - started:.0f} s): {Path(self.state['venvs']['web']).parent}")
        self._network_up()
        self.save()
        self._databases_up()
        say(f"db1 primary {self.addr('db1')}:3306, db2 replica {self.addr('db2')}:3306 (GTID, semi-sync)")
        for node in ("web1", "web2"):
            self.write_web_config(node)
        self.ddserver("init")
        self.start_bind()
        assert self.named is not None
        say(f"bind: named on {self.addr('bind')}:53 (zone {ZONE}, RFC 2136 with TSIG)")
        self.ddserver(
            "zone", "add", ZONE, "--ns", f"ns1.{ZONE}", "--ns", f"ns2.{ZONE}", "--hostmaster", f"hostmaster@{ZONE}"
        )
        self.ddserver(
            "zone", "edit", ZONE, "--rfc2136", f"{self.addr('bind')}:53", "--tsig-name", self.named.key_name,
            "--tsig-algorithm", self.named.key_algorithm, "--tsig-secret-file", str(self.named.folder / "secret"),
        )  # fmt: skip
        self.ddserver(
            "user",
            "add",
            "admin",
            "--email",
            f"admin@{ZONE}",
            "--admin",
            "--password-stdin",
            stdin="cluster-admin-pw\n",
        )
        secret = self.ddserver("host", "add", "admin", f"probe.{ZONE}").strip().splitlines()[-1]
        self.state["hosts"] = {f"probe.{ZONE}": secret}
        self.add_hosts(hosts)
        self.wait_replica_caught_up()
        for node in ("web1", "web2"):
            self.start_web(node)
        say(
            f"web1 {self.addr('web1')}: ddserver-updater :8081, ddserver-bundle :8080; web2 {self.addr('web2')}: ddserver-updater :8081, ddserver-rfc2136"
        )
        self.start_lb()
        say(f"lb: HAProxy {self.addr('lb')}:80 (updaters, checks on /health), :8080 (interface)")
        for node in ("ns1", "ns2"):
            self.write_ns_config(node, self.ns_source(node))
            self.start_ns(node)
        say(f"ns1 {self.addr('ns1')}:53 (PowerDNS + recursor reading db2), ns2 {self.addr('ns2')}:53 (reading db1)")
        self.save()
        say(f"cluster {self.n} up in {time.monotonic() - started:.0f} s; folder {self.folder}")
        figures = self.probe()
        say(
            "an update through lb answered by ns2 (primary) after {ns2:.3f} s, ns1 (replica) after {ns1:.3f} s, "
            "BIND after {bind:.3f} s".format(**figures)
        )

    def add_hosts(self, count: int) -> None:
        """``count`` hosts of user ``load`` (through the store on db1, quicker than ``ddserver host add`` each)."""
        if count <= 0:
            return
        from ddserver import secrets as ddsecrets
        from ddserver.db import Database
        from ddserver.store import hosts as hoststore
        from ddserver.store import users

        db = Database(f"mysql://root@localhost/ddserver?unix_socket={self.db_socket(self.primary)}")
        try:
            user = users.add(db, "load", f"load@{ZONE}", max_hosts=-1)
            for i in range(count):
                secret = ddsecrets.new_host_secret()
                name = f"h{i:04d}.{ZONE}"
                hoststore.add(
                    db, user.id, name, ddsecrets.hash_host_secret(secret, ""), default_limit=-1, ipv4="10.0.0.1"
                )
                self.state["hosts"][name] = secret
        finally:
            db.close_all()
        self.save()

    # talking to it

    def update(self, host: str, address: str, timeout: float = 10) -> str:
        """One dyndns2 update through lb; the answer's first word (``good``, ``nochg``, ``911``...)."""
        url = f"http://{self.addr('lb')}/nic/update?hostname={host}&myip={address}"
        request = urllib.request.Request(url)
        auth = b64encode(f"{host}:{self.state['hosts'][host]}".encode()).decode()
        request.add_header("Authorization", f"Basic {auth}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read().decode().split()[0]
        except urllib.error.HTTPError as exc:
            return (exc.read().decode().split() or [str(exc.code)])[0]

    def dns_query(self, node: str, name: str, rdtype: str = "A", timeout: float = 2) -> dns.message.Message:
        request = dns.message.make_query(name, rdtype)
        return dns.query.udp(request, self.addr(node), port=53, timeout=timeout)

    def dns_rcode(self, node: str, name: str, rdtype: str = "A") -> str:
        return dns.rcode.to_text(self.dns_query(node, name, rdtype).rcode())

    def dns_a(self, node: str, name: str) -> list[str]:
        answer = self.dns_query(node, name)
        return sorted(rd.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)

    def recursor_metrics(self, node: str) -> dict[str, float]:
        """The Prometheus metrics of ``node``'s recursor, by name (labelled series left out)."""
        with urllib.request.urlopen(f"http://{self.addr(node)}:9153/metrics", timeout=5) as response:
            text = response.read().decode()
        found = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                found[name.removeprefix("ddserver_recursor_")] = float(value)
        return found

    def db_addresses(self, node: str | None = None) -> dict[str, str | None]:
        """Every host's IPv4 address in ``node``'s database (the primary's by default)."""
        rows = self.sql(node or self.primary, "SELECT name, ipv4 FROM hosts", database="ddserver")
        return {name if name.endswith(f".{ZONE}") else f"{name}.{ZONE}": ipv4 for name, ipv4 in rows}

    def probe(self, host: str | None = None) -> dict[str, float]:
        """Seconds from an acknowledged update through lb until each nameserver (and BIND) answers it."""
        host = host or f"probe.{ZONE}"
        address = f"10.{self.n}.{int(time.time()) % 256}.{secrets.randbelow(250) + 1}"
        answer = self.update(host, address)
        if answer != "good":
            raise ClusterError(f"update of {host} through lb answered {answer}")
        acked = time.monotonic()
        figures: dict[str, float] = {}
        pending = {"ns1", "ns2", "bind"}
        deadline = acked + 60
        while pending and time.monotonic() < deadline:
            for node in sorted(pending):
                with contextlib.suppress(OSError, dns.exception.DNSException):
                    if self.dns_a(node, host) == [address]:
                        figures[node] = time.monotonic() - acked
                        pending.discard(node)
            time.sleep(0.01)
        if pending:
            raise ClusterError(f"{', '.join(sorted(pending))} did not answer {host} = {address} within 60 s")
        return figures

    # the runbook

    def promote(self, node: str = "db2") -> dict[str, float]:
        """Make ``node`` the primary: apply what it received, stop replicating, accept writes; then point the
        updaters, the RFC 2136 worker and the nameservers reading the old primary at it and restart them."""
        started = time.monotonic()
        old = self.primary
        # A primary still running is fenced first (no write after this point: ddserver's users lack SUPER),
        # and the replica must reach its last transaction; a dead one shipped what it acknowledged.
        target = ""
        with contextlib.suppress(pymysql.err.Error, OSError):
            self.sql(old, "SET GLOBAL read_only = 1")
            self._my_cnf(old, read_only=True)
            target = str(self.sql(old, "SELECT @@gtid_binlog_pos")[0][0])
        received = target or str(self.slave_status(node).get("Gtid_IO_Pos", ""))
        if received:
            # Everything the old primary shipped (semi-sync: everything it acknowledged) is applied first.
            result = self.sql(node, "SELECT MASTER_GTID_WAIT(%s, 150)", (received,))[0][0]
            if result != 0:
                raise ClusterError(f"{node} did not apply {received} within 150 s")
        self.sql(node, "STOP SLAVE")
        self.sql(node, "RESET SLAVE ALL")
        self.sql(node, "SET GLOBAL read_only = 0")
        self._my_cnf(node, read_only=False)  # and so after a restart
        self.state["primary"] = node
        self.save()
        promoted = time.monotonic() - started
        for web in ("web1", "web2"):
            # One at a time, each back in lb before the next goes: lb always has an updater to send to.
            self.write_web_config(web)
            self.start_web(web)
            support.wait_until(lambda web=web: web in self.lb_up(), 30, what=f"lb to take {web} back")
        sources = self.state.setdefault("ns_source", {})
        for ns in ("ns1", "ns2"):
            if self.ns_source(ns) == old:
                sources[ns] = node
                self.write_ns_config(ns, node)
                self.start_ns(ns)
        self.save()
        return {"promote": promoted, "total": time.monotonic() - started}

    def status(self) -> str:
        lines = [f"cluster {self.n}: {self.folder}, network {self.net}, primary {self.primary}"]
        for node in NODES:
            pids = run(["ip", "netns", "pids", self.netns(node)], check=False).stdout.split()
            names = []
            for pid in pids:
                with contextlib.suppress(OSError):
                    names.append(Path(f"/proc/{pid}/comm").read_text().strip())
            lines.append(f"  {node:5} {self.addr(node):15} {', '.join(sorted(set(names))) or '(nothing running)'}")
        with contextlib.suppress(OSError):
            lines.append(f"  lb: {self.lb_states()}")
        for node in ("db1", "db2"):
            try:
                s = self.slave_status(node)
                pos = self.sql(node, "SELECT @@gtid_current_pos, @@read_only")[0]
                role = (
                    f"replica of {s.get('Master_Host')}, IO {s.get('Slave_IO_Running')}, SQL {s.get('Slave_SQL_Running')}, behind {s.get('Seconds_Behind_Master')} s"
                    if s
                    else ("fenced (no replication, read-only)" if int(pos[1]) else "primary")
                )
                lines.append(f"  {node}: {role}; gtid {pos[0]}; read_only {pos[1]}")
            except Exception as exc:  # noqa: BLE001 - a status line, whatever the failure
                lines.append(f"  {node}: unreachable ({exc})")
        return "\n".join(lines)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class ClusterNamed(NamedServer):
    """The cluster's BIND: tests/named.py's server, on port 53 of the bind node's address, in its namespace."""

    def __init__(self, folder: Path, cluster: Cluster) -> None:
        super().__init__(folder, (ZONE,))
        self.cluster = cluster
        self.host = cluster.addr("bind")
        self.port = 53
        self._write()

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.cluster.netns("bind"), *super().argv()]


def clusters() -> Iterator[int]:
    for path in sorted(CLUSTERS_DIR.glob("ddserver-cluster-*")):
        with contextlib.suppress(ValueError):
            yield int(path.name.rsplit("-", 1)[1])


def new_cluster() -> Cluster:
    return Cluster(_pick_net())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster.sh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a cluster; prints where everything is")
    up.add_argument("--hosts", type=int, default=20, help="update hosts to add besides probe (default 20)")
    for name, text in (("down", "stop a cluster and remove it"), ("status", "what runs where")):
        p = sub.add_parser(name, help=text)
        p.add_argument("n", nargs="?", type=int, help="the cluster's number (default: every cluster)")
    promote = sub.add_parser("promote", help="failover runbook: make the replica the primary")
    promote.add_argument("node", nargs="?", default="db2")
    promote.add_argument("--cluster", type=int, dest="n")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("cluster: network namespaces need root", file=sys.stderr)
        return 1
    if args.command == "up":
        cluster = new_cluster()
        try:
            cluster.up(hosts=args.hosts, out=sys.stdout)
        except BaseException:
            cluster.down()
            raise
        print(f"stop it with: scripts/cluster.sh down {cluster.n}")
        return 0
    numbers = [args.n] if args.n is not None else list(clusters())
    if not numbers:
        print("no cluster")
    for n in numbers:
        cluster = Cluster.load(n)
        if args.command == "down":
            cluster.down()
            print(f"cluster {n} removed")
        elif args.command == "status":
            print(cluster.status())
        else:
            print(f"cluster {n}: {args.node} promoted: {cluster.promote(args.node)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
