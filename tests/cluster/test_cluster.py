"""The cluster of scripts/cluster.sh under a steady load, losing one node at a time: no acknowledged update is
lost and DNS keeps answering (docs/cluster.md); each test prints the figures it measures."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests import support
from tests.cluster.cluster import ZONE, Cluster
from tests.cluster.load import DnsLoad, UpdateLoad

# The first test also waits for the cluster (and, once per checkout, its wheels and environments).
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster"), pytest.mark.timeout(900)]

Record = Callable[[str, object], None]


def load_hosts(cluster: Cluster) -> list[str]:
    return sorted(h for h in cluster.state["hosts"] if h.startswith("h"))


def figure(record_property: Record, text: str) -> None:
    print(text)
    record_property("figure", text)


def wait_dns(cluster: Cluster, expected: dict[str, str], nodes: tuple[str, ...], timeout: float = 60) -> str:
    """Until every node answers every host with its expected address; how long each took, as text.
    Fails naming what differs."""
    started = time.monotonic()
    took: dict[str, float] = {}
    wrong: dict[str, list[str]] = {}

    def check() -> bool:
        for node in nodes:
            if node in took:
                continue
            wrong[node] = [
                f"{host} {got} != {address}"
                for host, address in expected.items()
                if (got := cluster.dns_a(node, host)) != [address]
            ]
            if not wrong[node]:
                took[node] = time.monotonic() - started
                del wrong[node]
        return len(took) == len(nodes)

    try:
        support.wait_until(check, timeout, 0.2, "the nameservers to answer every acknowledged address")
    except TimeoutError:
        raise AssertionError(f"after {timeout} s: { ({n: w[:5] for n, w in wrong.items()}) }") from None
    return ", ".join(f"{node} {seconds:.2f} s" for node, seconds in took.items())


def healthy(cluster: Cluster) -> None:
    """What an earlier test broke is back: both updaters in lb, the replica replicating."""
    support.wait_until(lambda: cluster.lb_up() == {"web1", "web2"}, 30, what="both updaters up in lb")
    if cluster.primary == "db1":
        support.wait_until(
            lambda: cluster.slave_status("db2").get("Slave_IO_Running") == "Yes", 30, what="db2 to replicate"
        )


def steady(cluster: Cluster, nameservers: tuple[str, ...] = ("ns1", "ns2")) -> tuple[UpdateLoad, DnsLoad]:
    healthy(cluster)
    hosts = load_hosts(cluster)
    updates = UpdateLoad(cluster, hosts, clients=20).start()
    resolver = DnsLoad(cluster, list(nameservers), hosts).start()
    time.sleep(2)
    return updates, resolver


def feed_check(cluster: Cluster, node: str, before: dict[str, float], database: str) -> str:
    """What ``node``'s recursor did since ``before`` (its metrics then), checked against ``database``'s feed:
    no full reload, every change since applied exactly once, the newest applied."""
    after = cluster.recursor_metrics(node)
    low, high = int(before["last_change_id"]), int(after["last_change_id"])
    rows, newest = cluster.sql(
        database, "SELECT COUNT(*), MAX(id) FROM changes WHERE id > %s AND id <= %s", (low, high), database="ddserver"
    )[0]
    applied = int(after["changes_applied_total"] - before["changes_applied_total"])
    assert after["reloads_total"] == before["reloads_total"], f"{node}'s recursor reloaded: {before} -> {after}"
    assert applied == rows, f"{node}'s recursor applied {applied} changes for the {rows} of ids {low}..{high}"
    top = cluster.sql(database, "SELECT MAX(id) FROM changes", database="ddserver")[0][0]
    assert high == top, f"{node}'s recursor is at change {high}, the feed at {top}"
    return f"{node}'s recursor applied the {rows} changes {low + 1}..{newest} once each, without a reload"


def first_after(log: list[tuple[float, str, float]], since: float, answers: tuple[str, ...]) -> float | None:
    """Seconds from ``since`` to the first answer among ``answers`` to a request started after it."""
    times = [at + took for at, answer, took in log if at >= since and answer in answers]
    return min(times) - since if times else None


def test_updater_node_killed(cluster: Cluster, record_property: Record) -> None:
    updates, resolver = steady(cluster)
    try:
        killed = time.monotonic()
        cluster.kill("web1")  # kill -9 of every process of the node
        support.wait_until(
            lambda: cluster.lb_states().get("web1", "").startswith("DOWN"), 30, 0.02, "lb to take web1 out"
        )
        switched = time.monotonic() - killed
        time.sleep(3)
        after = time.monotonic()
    finally:
        updates.stop()
        resolver.stop()
    # Every failure of the run (none happen before the kill, but requests under way then fail after it).
    failed = len(updates.failures)
    failed_after_switch = updates.failed_between(killed + switched, after)
    lost = updates.lost(cluster.db_addresses())
    cluster.start_web("web1")
    updates.settle()
    converged = wait_dns(cluster, updates.expected(), ("ns1", "ns2", "bind"))
    figure(
        record_property,
        f"updater node killed: lb took it out after {switched:.2f} s (checks every 0.5 s, fall 2); "
        f"{failed} of {len(updates.log)} updates failed during the switch ({failed_after_switch} after it), "
        f"answers {updates.answers}; DNS {resolver.summary()}; all nameservers and BIND equal the last acknowledged "
        f"addresses {converged} after the last update",
    )
    assert not lost, lost
    assert failed_after_switch == 0, updates.failures  # once lb has it down, nothing goes to web1
    assert all(c["SERVFAIL"] == 0 for c in resolver.counts.values()), resolver.summary()


def test_nameserver_node_killed(cluster: Cluster, record_property: Record) -> None:
    updates, resolver = steady(cluster)
    try:
        killed = time.monotonic()
        cluster.kill("ns2")  # pdns_server and its recursor, kill -9
        time.sleep(3)
        updates.stop()
        updates.settle()
        restarted = time.monotonic()
        cluster.start_ns("ns2")
        answering = time.monotonic() - restarted
        wait_dns(cluster, updates.expected(), ("ns2",))
        correct = time.monotonic() - restarted
        down_for = time.monotonic() - killed
    finally:
        updates.stop()
        resolver.stop()
    converged = wait_dns(cluster, updates.expected(), ("ns1", "ns2", "bind"))
    figure(
        record_property,
        f"nameserver node killed: ns1 during the {down_for:.1f} s without ns2: {resolver.counts['ns1']}; "
        f"ns2 restarted answered after {answering:.2f} s, with every acknowledged address after {correct:.2f} s; "
        f"all equal {converged} later; updates {updates.answers}",
    )
    assert resolver.counts["ns1"]["SERVFAIL"] == 0 and resolver.counts["ns1"]["other"] == 0, resolver.summary()
    assert not updates.lost(cluster.db_addresses())


def test_replica_stopped_then_down(cluster: Cluster, record_property: Record) -> None:
    updates, resolver = steady(cluster)
    metrics = cluster.recursor_metrics("ns1")
    try:
        cluster.sql("db2", "STOP SLAVE")
        time.sleep(30)
        behind = len(updates.log)
        cluster.kill("db2", "mariadbd")
        time.sleep(5)
        restarted = time.monotonic()
        cluster.start_db("db2")
        cluster.sql("db2", "START SLAVE")
        cluster.wait_replica_caught_up("db2")
        caught_up = time.monotonic() - restarted
        time.sleep(2)
    finally:
        updates.stop()
        resolver.stop()
    lost = updates.lost(cluster.db_addresses("db1"))
    updates.settle()
    converged = wait_dns(cluster, updates.expected(), ("ns1", "ns2", "bind"))
    cluster.wait_replica_caught_up("db2")
    assert cluster.db_addresses("db2") == cluster.db_addresses("db1")
    followed = feed_check(cluster, "ns1", metrics, "db2")
    probes = [cluster.probe() for _ in range(5)]
    ns1 = [p["ns1"] for p in probes]
    ns2 = [p["ns2"] for p in probes]
    figure(
        record_property,
        f"replica stopped 30 s then down 5 s: ns1 (reading db2) answered from memory: {resolver.counts['ns1']}; "
        f"{behind} updates meanwhile; db2 caught up {caught_up:.2f} s after its restart; ns1 equal to the primary "
        f"{converged} after the last update; visibility through lb: ns1 via the replica median "
        f"{statistics.median(ns1):.3f} s (max {max(ns1):.3f}), ns2 via the primary median "
        f"{statistics.median(ns2):.3f} s (max {max(ns2):.3f}); updates {updates.answers}; {followed}",
    )
    assert resolver.counts["ns1"]["SERVFAIL"] == 0 and resolver.counts["ns1"]["other"] == 0, resolver.summary()
    assert not lost, lost


def test_primary_down(cluster: Cluster, record_property: Record) -> None:
    updates, resolver = steady(cluster)
    metrics = cluster.recursor_metrics("ns2")
    try:
        killed = time.monotonic()
        cluster.kill("db1", "mariadbd")
        time.sleep(8)
        restarted = time.monotonic()
        cluster.start_db("db1")
        listening = time.monotonic() - restarted
        support.wait_until(
            lambda: first_after(updates.log, restarted, ("good",)) is not None, 60, what="updates to succeed again"
        )
        time.sleep(2)
    finally:
        updates.stop()
        resolver.stop()
    during = [(answer, took) for at, answer, took in updates.log if killed <= at < restarted]
    to_911 = first_after(updates.log, killed, ("911",))
    resumed = first_after(updates.log, restarted, ("good",))
    lost = updates.lost(cluster.db_addresses("db1"))
    support.wait_until(lambda: cluster.slave_status("db2").get("Slave_IO_Running") == "Yes", 30, what="replication")
    updates.settle()
    converged = wait_dns(cluster, updates.expected(), ("ns1", "ns2", "bind"))
    followed = feed_check(cluster, "ns2", metrics, "db1")
    figure(
        record_property,
        f"primary down 8 s: first 911 {to_911:.3f} s after the kill; answers to requests sent during the outage "
        f"{dict(Counter(a for a, _ in during))}, slowest {max((t for _, t in during), default=0):.2f} s; "
        f"mariadbd listening {listening:.2f} s after its restart, first good {resumed:.2f} s after it; "
        f"DNS {resolver.summary()}; all equal "
        f"{converged} after the last update; {followed}",
    )
    assert to_911 is not None and resumed is not None, updates.answers
    assert "timeout" not in updates.answers, updates.answers
    assert not lost, lost
    assert all(c["SERVFAIL"] == 0 and c["other"] == 0 for c in resolver.counts.values()), resolver.summary()


def stale_pushes(cluster: Cluster, updates: UpdateLoad) -> list[str]:
    """Addresses BIND was given after a newer one of the same host: a change applied again after a later one.

    The RFC 2136 worker pushes a name's current data, so pushing a change twice gives BIND the same address
    again, which is harmless; an older address after a newer one would be a change replayed out of order.
    """
    assert cluster.named is not None
    adds = re.findall(r"adding an RR at '([^']+)' A (\S+)", cluster.named.log())
    order = {host: {a: i for i, a in enumerate(state.history)} for host, state in updates.hosts.items()}
    newest: dict[str, int] = {}
    stale = []
    for host, address in adds:
        index = order.get(host, {}).get(address)
        if index is None:
            continue  # a host of no client, or an address sent before this load or never acknowledged
        if index < newest.get(host, -1):
            stale.append(f"{host} {address} after {updates.hosts[host].history[newest[host]]}")
        newest[host] = max(newest.get(host, -1), index)
    return stale


def test_failover_to_replica(cluster: Cluster, record_property: Record) -> None:
    updates, resolver = steady(cluster)
    before = cluster.sql("db2", "SELECT MAX(id) FROM changes", database="ddserver")[0][0]
    metrics = cluster.recursor_metrics("ns1")
    try:
        killed = time.monotonic()
        cluster.kill("db1")  # the primary's machine is gone
        steps = cluster.promote("db2")
        promoted = time.monotonic()
        support.wait_until(
            lambda: first_after(updates.log, promoted, ("good",)) is not None, 60, what="updates on the new primary"
        )
        time.sleep(3)
    finally:
        updates.stop()
        resolver.stop()
    resumed = first_after(updates.log, killed, ("good",))
    assert resumed is not None
    failed = len(updates.failures)  # under way at the kill or sent during the switch
    lost = updates.lost(cluster.db_addresses("db2"))
    updates.settle()
    converged = wait_dns(cluster, updates.expected(), ("ns1", "ns2", "bind"))
    ids = cluster.sql(
        "db2", "SELECT MIN(id), MAX(id), COUNT(*) FROM changes WHERE id > %s", (before,), database="ddserver"
    )
    low, high, count = ids[0]
    support.wait_until(
        lambda: cluster.sql("db2", "SELECT rfc2136_position FROM zones", database="ddserver")[0][0] >= high,
        30,
        what="the RFC 2136 worker to reach the feed's end",
    )
    stale = stale_pushes(cluster, updates)
    followed = feed_check(cluster, "ns1", metrics, "db2")
    ns2 = cluster.recursor_metrics("ns2")
    figure(
        record_property,
        f"failover: db2 promoted {steps['promote']:.2f} s after the kill, updaters and ns2 repointed and restarted "
        f"{steps['total']:.2f} s after it; first good update {resumed:.2f} s after the kill; {failed} updates failed "
        f"across the switch, answers {updates.answers}; DNS {resolver.summary()}; change ids {low}..{high} "
        f"({count} changes) after {before}; all nameservers and BIND equal the database {converged} after "
        f"the last update; {followed}; ns2's recursor, restarted on db2, at change {int(ns2['last_change_id'])}",
    )
    assert not lost, lost
    assert ns2["last_change_id"] == high and ns2["reloads_total"] == 1, ns2
    assert low > before, (low, before)
    assert not stale, stale[:10]
    assert cluster.db_addresses("db2")[f"probe.{ZONE}"] is not None
    assert resolver.counts["ns1"]["SERVFAIL"] == 0, resolver.summary()
