"""The cluster fixture: one cluster per test module, always removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import support
from tests.cluster.cluster import Cluster, namespaces_available, new_cluster

#: Update hosts of the load (20 clients, 3 hosts each).
HOSTS = 60


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A running cluster (scripts/cluster.sh up) shared by a module's tests, each repairing what it breaks."""
    for binary in ("ip", "mariadbd", "mariadb-install-db", "haproxy", "named", "pdns_server"):
        support.require_binary(binary)
    if not namespaces_available():
        support.missing("the cluster needs network namespaces (root, ip netns)")
    built = new_cluster()
    try:
        built.up(hosts=HOSTS)
        print(f"cluster {built.n} up in {built.folder}")
        yield built
    finally:
        built.down()
