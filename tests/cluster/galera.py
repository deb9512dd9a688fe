"""A three-node Galera cluster (Debian's galera-4) of private ``mariadbd`` instances on 127.0.0.1, for tests.

Each node has its own folder, SQL port, group port, IST and SST ports; the first bootstraps the cluster and
the others join it by SST (rsync). The machine's shared MariaDB is never touched. Usable from the shell too:
``python -m tests.cluster.galera up DIR`` (see scripts/galera.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from tests import support

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
HOST = "127.0.0.1"


def require_galera() -> None:
    """Skip (fail under CI) when galera-4 or what the rsync SST needs is missing."""
    if not Path(PROVIDER).exists():
        support.missing(f"Galera is not installed ({PROVIDER}: apt-get install galera-4)")
    support.require_binary("rsync")
    support.require_binary("wsrep_sst_rsync")
    support.require_binary("mariadbd")


@dataclass
class GaleraNode:
    """One node: its folder, ports and (when running) its ``mariadbd`` process."""

    index: int
    folder: Path
    port: int
    group_port: int
    ist_port: int
    sst_port: int
    process: support.Process | None = None

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def cnf(self) -> Path:
        return self.folder / "my.cnf"

    @property
    def url_base(self) -> str:
        return f"mysql://root@{HOST}:{self.port}/"

    def url(self, database: str = "ddserver") -> str:
        return self.url_base + database

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def connect(self, timeout: float = 3) -> pymysql.connections.Connection:
        return pymysql.connect(host=HOST, port=self.port, user="root", connect_timeout=timeout, autocommit=True)

    def status(self, like: str = "wsrep_%") -> dict[str, str]:
        """The node's status variables named ``like`` (Galera's by default)."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE %s", (like,))
            return {str(k): str(v) for k, v in cur.fetchall()}

    def synced(self, size: int | None = None) -> bool:
        """The node is in the primary component, synced and ready (with ``size`` members, when given)."""
        try:
            status = self.status()
        except pymysql.MySQLError:
            return False
        return (
            status.get("wsrep_ready") == "ON"
            and status.get("wsrep_local_state_comment") == "Synced"
            and status.get("wsrep_cluster_status") == "Primary"
            and (size is None or status.get("wsrep_cluster_size") == str(size))
        )

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""


def server_user() -> str:
    """The account the nodes run as: ``mysql`` when run as root. The rsync daemon of an SST, started by root,
    would switch to ``nobody`` and could not write the joiner's data; started by ``mysql`` it stays ``mysql``."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam("mysql")
    except KeyError:
        support.missing("the mysql account is missing (Debian's mariadb-server makes it)")
    return "mysql"


class GaleraCluster:
    """Three Galera nodes on 127.0.0.1 in ``folder``; ``start()`` brings them up, ``stop()`` always ends them.

    ``folder`` must be reachable by the nodes' account (``server_user``): pytest's own temp folders are
    private to root, so tests pass a folder of ``tempfile.mkdtemp``. ``kill(i)`` ends a node as a crash
    would; ``start_node(i)`` brings it back (by IST or SST).
    """

    def __init__(self, folder: Path, size: int = 3) -> None:
        require_galera()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.user = server_user()
        entry = pwd.getpwnam(self.user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self._own(self.folder)
        self.mariadbd = support.require_binary("mariadbd")
        ports: set[int] = set()

        def port() -> int:
            while True:
                found = support.free_port(host=HOST)
                if found not in ports:
                    ports.add(found)
                    return found

        self.nodes = [GaleraNode(i, folder / f"node{i}", port(), port(), port(), port()) for i in range(1, size + 1)]
        for node in self.nodes:
            node.folder.mkdir(exist_ok=True)
            node.cnf.write_text(self._cnf(node))
            self._own(node.folder)

    def _own(self, path: Path) -> None:
        """Give ``path`` (and what is in it) to the nodes' account."""
        if os.geteuid() != 0:
            return
        os.chown(path, self.uid, self.gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)

    def _cnf(self, node: GaleraNode) -> str:
        members = ",".join(f"{HOST}:{n.group_port}" for n in self.nodes)
        provider_options = (
            f"gmcast.listen_addr=tcp://{HOST}:{node.group_port};ist.recv_addr={HOST}:{node.ist_port};"
            # Small caches and quick failure detection: a killed node leaves the group in seconds.
            "gcache.size=64M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S;"
            "pc.weight=1"
        )
        return "\n".join(
            [
                "[mysqld]",
                f"datadir={node.datadir}",
                f"socket={node.folder}/mysqld.sock",
                f"pid-file={node.folder}/mysqld.pid",
                f"port={node.port}",
                f"bind-address={HOST}",
                f"user={self.user}",
                "skip-name-resolve",
                "skip-log-bin",
                "innodb_buffer_pool_size=48M",
                "innodb_log_file_size=8M",
                # Galera holds commits until certified; flushing every commit to disk as well is not needed.
                "innodb_flush_log_at_trx_commit=2",
                "max_connections=300",
                "binlog_format=ROW",
                "default_storage_engine=InnoDB",
                "innodb_autoinc_lock_mode=2",
                "wsrep_on=ON",
                f"wsrep_provider={PROVIDER}",
                "wsrep_cluster_name=ddserver-test",
                f"wsrep_cluster_address=gcomm://{members}",
                f"wsrep_node_name={node.name}",
                f"wsrep_node_address={HOST}:{node.group_port}",
                f"wsrep_node_incoming_address={HOST}:{node.port}",
                f"wsrep_provider_options={provider_options}",
                "wsrep_sst_method=rsync",
                f"wsrep_sst_receive_address={HOST}:{node.sst_port}",
                "wsrep_slave_threads=2",
                "",
            ]
        )

    # -- starting and stopping

    def _install(self, node: GaleraNode) -> None:
        if node.datadir.exists():
            return
        template = self.folder / "template"
        if not template.exists():
            installer = support.require_binary("mariadb-install-db")
            result = subprocess.run(
                [
                    installer,
                    "--no-defaults",
                    f"--datadir={template}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--innodb-log-file-size=8M",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                support.missing(f"mariadb-install-db failed: {result.stderr[-500:]}")
        shutil.copytree(template, node.datadir)
        self._own(node.datadir)

    def start(self, timeout: float = 120.0) -> None:
        """Bootstrap node 1 and join the others one after the other, each waited for until synced."""
        try:
            for node in self.nodes:
                self.start_node(node.index, bootstrap=node.index == 1, timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def start_node(self, index: int, *, bootstrap: bool = False, timeout: float = 120.0) -> GaleraNode:
        node = self.node(index)
        if node.alive():
            return node
        self._install(node)
        argv = [self.mariadbd, f"--defaults-file={node.cnf}"]
        if bootstrap:
            argv.append("--wsrep-new-cluster")
        # PATH must reach the SST scripts (wsrep_sst_rsync), rsync and the tools they call.
        env = dict(os.environ, PATH=os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/bin:/usr/sbin:/bin:/sbin")
        node.process = support.Process(argv, log=node.folder / "mariadbd.log", env=env)
        node.process.wait_for(node.synced, timeout, f"Galera {node.name} to be synced")
        return node

    def node(self, index: int) -> GaleraNode:
        return self.nodes[index - 1]

    def kill(self, index: int) -> None:
        """End a node at once (``kill -9``), as a crash or a power cut would."""
        node = self.node(index)
        if node.process is not None:
            node.process.signal(signal.SIGKILL)
            node.process.proc.wait(10)
            node.process.stop()

    def stop_node(self, index: int) -> None:
        node = self.node(index)
        if node.process is not None:
            node.process.stop(timeout=60)

    def stop(self) -> None:
        """Stop every node (the last ones first, so the first stays primary until the end)."""
        for node in reversed(self.nodes):
            try:
                self.stop_node(node.index)
            except Exception:  # noqa: BLE001 - the others must be stopped all the same
                node.process and node.process.signal(signal.SIGKILL)

    def size(self, index: int) -> int:
        """The cluster size as node ``index`` sees it."""
        return int(self.node(index).status().get("wsrep_cluster_size", "0"))

    def wait_synced(self, size: int, timeout: float = 60.0) -> None:
        """Every running node is synced in a primary component of ``size`` nodes."""
        running = [n for n in self.nodes if n.alive()]
        support.wait_until(
            lambda: all(n.synced(size) for n in running), timeout=timeout, what=f"{size} synced Galera nodes"
        )

    def describe(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        for node in self.nodes:
            entry: dict[str, object] = {"node": node.name, "sql": f"{HOST}:{node.port}", "running": node.alive()}
            with contextlib.suppress(pymysql.MySQLError):
                status = node.status()
                entry.update(
                    state=status.get("wsrep_local_state_comment"),
                    cluster=status.get("wsrep_cluster_status"),
                    size=status.get("wsrep_cluster_size"),
                )
            found.append(entry)
        return found

    def logs(self) -> str:
        return "\n".join(f"--- {n.name} ---\n{n.log()[-3000:]}" for n in self.nodes)

    def __enter__(self) -> GaleraCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def galera_cluster(folder: Path) -> Iterator[GaleraCluster]:
    """A started three-node cluster, stopped whatever happens."""
    cluster = GaleraCluster(folder)
    with cluster:
        yield cluster


# -- the command line (scripts/galera.sh): a cluster that outlives the command, in a folder of its own


def _up(folder: Path) -> int:
    cluster = GaleraCluster(folder)
    cluster.start()
    # The processes must outlive this command: forget them here, remember their pids in the folder.
    state = {
        "nodes": [{"index": n.index, "port": n.port, "pid": n.process.pid if n.process else 0} for n in cluster.nodes]
    }
    (folder / "cluster.json").write_text(json.dumps(state))
    for node in cluster.nodes:
        print(f"{node.name}: {node.url_base}")
    return 0


def _down(folder: Path) -> int:
    state_file = folder / "cluster.json"
    if not state_file.exists():
        print(f"no cluster in {folder}", file=sys.stderr)
        return 1
    state = json.loads(state_file.read_text())
    for entry in reversed(state["nodes"]):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entry["pid"], signal.SIGTERM)
            for _ in range(600):
                try:
                    os.killpg(entry["pid"], 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
    state_file.unlink()
    return 0


def _status(folder: Path) -> int:
    state_file = folder / "cluster.json"
    if not state_file.exists():
        print(f"no cluster in {folder}", file=sys.stderr)
        return 1
    up = 0
    for entry in json.loads(state_file.read_text())["nodes"]:
        node = GaleraNode(entry["index"], folder / f"node{entry['index']}", entry["port"], 0, 0, 0)
        try:
            status = node.status()
            up += 1
            print(
                f"{node.name}: {node.url_base} {status.get('wsrep_local_state_comment')} "
                f"{status.get('wsrep_cluster_status')} size {status.get('wsrep_cluster_size')}"
            )
        except pymysql.MySQLError as exc:
            print(f"{node.name}: {node.url_base} down ({exc.args[-1]})")
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A three-node Galera cluster of private mariadbd on 127.0.0.1")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    if args.command == "up":
        return _up(folder)
    return _down(folder) if args.command == "down" else _status(folder)


if __name__ == "__main__":
    sys.exit(main())
