"""A steady load on a cluster: dyndns2 clients through lb that remember every acknowledged address, and a
resolver loop on each nameserver that counts what did not answer."""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from base64 import b64encode
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.cluster.cluster import Cluster

#: Addresses 10.1.0.0 and up (hosts start at 10.0.0.1), 16 million before they repeat.
_SEQUENCE = itertools.count(1 << 16)


@dataclass
class HostState:
    """What a client knows of one host: the last acknowledged address and those sent after it unanswered."""

    acked: str | None = None
    uncertain: set[str] = field(default_factory=set)
    #: Every acknowledged address, in the order the answers came.
    history: list[str] = field(default_factory=list)


class UpdateLoad:
    """``clients`` threads, each updating its own hosts in turn through lb with a new address every time."""

    def __init__(self, cluster: Cluster, hosts: list[str], clients: int = 20, pause: float = 0.1) -> None:
        self.cluster = cluster
        self.hosts = {name: HostState() for name in hosts}
        self.clients = clients
        self.pause = pause
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.answers: dict[str, int] = {}
        #: (monotonic time, answer) of every request not acknowledged with good or nochg.
        self.failures: list[tuple[float, str]] = []
        #: (monotonic time, answer, seconds) of every request.
        self.log: list[tuple[float, str, float]] = []
        self.longest = 0.0

    def start(self) -> UpdateLoad:
        names = sorted(self.hosts)
        for i in range(self.clients):
            mine = names[i :: self.clients]
            thread = threading.Thread(target=self._client, args=(i, mine), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        self.threads = []

    def _address(self, client: int) -> str:
        """A new address each time, never one of an earlier load in this process either."""
        seq = next(_SEQUENCE)
        return f"10.{(seq >> 16) & 255}.{(seq >> 8) & 255}.{seq & 255}"

    def _client(self, client: int, hosts: list[str]) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stopping.is_set():
            for host in hosts:
                if self.stopping.is_set():
                    break
                if conn is None:
                    conn = http.client.HTTPConnection(self.cluster.addr("lb"), 80, timeout=10)
                answer = self.update(conn, host, self._address(client))
                if answer not in ("good", "nochg"):
                    conn.close()
                    conn = None
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def update(self, conn: http.client.HTTPConnection, host: str, address: str) -> str:
        """One update; the host's state is kept whatever the answer."""
        state = self.hosts[host]
        with self.lock:
            state.uncertain.add(address)
        auth = b64encode(f"{host}:{self.cluster.state['hosts'][host]}".encode()).decode()
        started = time.monotonic()
        try:
            conn.request(
                "GET", f"/nic/update?hostname={host}&myip={address}", headers={"Authorization": f"Basic {auth}"}
            )
            response = conn.getresponse()
            body = response.read().decode()
            answer = (body.split() or [str(response.status)])[0]
            if response.status >= 500 and answer not in ("911", "dnserr"):
                answer = f"http{response.status}"
        except TimeoutError:
            answer = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            answer = type(exc).__name__
        took = time.monotonic() - started
        with self.lock:
            self.log.append((started, answer, took))
            self.longest = max(self.longest, took)
            self.answers[answer] = self.answers.get(answer, 0) + 1
            if answer in ("good", "nochg"):
                state.acked = address
                state.uncertain.clear()
                state.history.append(address)
            else:
                self.failures.append((started, answer))
        return answer

    def settle(self, timeout: float = 60) -> None:
        """One more acknowledged update of every host, so that its address is known for sure."""
        deadline = time.monotonic() + timeout
        conn = http.client.HTTPConnection(self.cluster.addr("lb"), 80, timeout=10)
        try:
            for host in self.hosts:
                while self.update(conn, host, self._address(250)) != "good":
                    conn.close()
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no update of {host} acknowledged within {timeout} s")
                    time.sleep(0.2)
        finally:
            conn.close()

    def lost(self, database: dict[str, str | None]) -> list[str]:
        """Hosts whose database address is neither the last acknowledged one nor one sent after it."""
        return [
            f"{host}: database {database.get(host)}, acknowledged {state.acked}"
            for host, state in self.hosts.items()
            if state.acked is not None
            and database.get(host) != state.acked
            and database.get(host) not in state.uncertain
        ]

    def expected(self) -> dict[str, str]:
        """After ``settle``: each host's address."""
        return {host: state.acked for host, state in self.hosts.items() if state.acked is not None}

    def failed_between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.failures if start <= at <= end)


class DnsLoad:
    """A resolver loop per nameserver over the known names, counting SERVFAIL and timeouts."""

    def __init__(self, cluster: Cluster, nodes: list[str], names: list[str], pause: float = 0.005) -> None:
        self.cluster = cluster
        self.nodes = nodes
        self.names = names
        self.pause = pause
        self.counts = {node: {"answers": 0, "SERVFAIL": 0, "timeout": 0, "other": 0} for node in nodes}
        #: node -> (monotonic time, what) of every question not answered with an address.
        self.failures: dict[str, list[tuple[float, str]]] = {node: [] for node in nodes}
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> DnsLoad:
        for node in self.nodes:
            thread = threading.Thread(target=self._loop, args=(node,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(10)

    def _loop(self, node: str) -> None:
        address = self.cluster.addr(node)
        i = 0
        while not self.stopping.is_set():
            name = self.names[i % len(self.names)]
            i += 1
            started = time.monotonic()
            try:
                answer = dns.query.udp(dns.message.make_query(name, "A"), address, port=53, timeout=1)
                rcode = dns.rcode.to_text(answer.rcode())
                if rcode == "NOERROR" and any(r.rdtype == dns.rdatatype.A for r in answer.answer):
                    what = "answers"
                else:
                    what = "SERVFAIL" if rcode == "SERVFAIL" else "other"
            except dns.exception.Timeout:
                what = "timeout"
            except OSError:
                what = "other"
            self.counts[node][what] += 1
            if what != "answers":
                self.failures[node].append((started, what))
            time.sleep(self.pause)

    def summary(self) -> str:
        return "; ".join(f"{node}: {counts}" for node, counts in self.counts.items())
