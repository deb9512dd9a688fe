"""ddserver-recursor behind a real PowerDNS: every record type, NXDOMAIN/NODATA, nested zones, AXFR, updates
with caches on and off, on SQLite and MariaDB, over the pipe backend (ABI 1 to 5) and both remote connectors."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from ddserver import secrets
from ddserver.db import Database
from ddserver.store import hosts, records, users, zones
from tests import support
from tests.pdns import launch_pdns, pipe_backend, start_pdns

ZONE = "dyn.example.org"
PARENT = "example.org"


def populate(db: Database) -> dict[str, object]:
    """Two nested zones with every kind of host the recursor must get right."""
    zone = zones.add(db, ZONE, ["ns1.example.org", "ns2.example.org"], "hostmaster.example.org")
    zones.add(db, PARENT, ["ns1.example.org"], "hostmaster.example.org", ttl=300)
    alice = users.add(db, "alice", "alice@example.org", password_hash="x", is_admin=True)
    bob = users.add(db, "bob", "bob@example.org", password_hash="x")

    def host(user: object, name: str, **kw: object) -> hosts.Host:
        return hosts.add(db, user.id, name, secrets.hash_host_secret("s"), default_limit=100, **kw)  # type: ignore[attr-defined]

    made = {
        "home": host(alice, f"home.{ZONE}", ipv4="192.0.2.1", ipv6="2001:db8::1"),
        "v4": host(alice, f"v4.{ZONE}", ipv4="192.0.2.2"),
        "v6": host(alice, f"v6.{ZONE}", ipv6="2001:db8::6"),
        "wild": host(alice, f"wild.{ZONE}", ipv4="192.0.2.3", wildcard=True, ttl=120),
        "txt": host(alice, f"txt.{ZONE}", ipv4="192.0.2.4"),
        "blocked": host(alice, f"blocked.{ZONE}", ipv4="192.0.2.5"),
        "abuse": host(alice, f"abuse.{ZONE}", ipv4="192.0.2.6"),
        "bob": host(bob, f"bob.{ZONE}", ipv4="192.0.2.7"),
        "www": host(alice, f"www.{PARENT}", ipv4="198.51.100.1"),
    }
    records.add(db, made["txt"].id, f"txt.{ZONE}", "TXT", 'hello "world"')
    records.add(db, made["txt"].id, f"_acme-challenge.txt.{ZONE}", "TXT", "token-123")
    hosts.set_flags(db, made["blocked"].id, blocked=True)
    hosts.set_flags(db, made["abuse"].id, abuse=True)
    users.set_flags(db, bob.id, is_disabled=True)
    return {"zone": zone, **made}


def check_answers(pdns) -> None:  # type: ignore[no-untyped-def]
    """Everything populate() put in DNS, as PowerDNS answers it."""
    serial = zones.get(pdns.db, ZONE).serial
    assert pdns.addresses(f"home.{ZONE}") == ["192.0.2.1", "2001:db8::1"]
    assert pdns.addresses(f"HoMe.{ZONE}".upper()) == ["192.0.2.1", "2001:db8::1"]
    answer = pdns.query("HoMe.Dyn.example.ORG", "A")
    assert answer.answer[0].name.to_text() == "HoMe.Dyn.example.ORG."  # the qname echoed as asked
    assert pdns.records(f"home.{ZONE}", "A") == ["192.0.2.1"]
    assert pdns.records(f"home.{ZONE}", "AAAA") == ["2001:db8::1"]
    assert pdns.records(f"v4.{ZONE}", "A") == ["192.0.2.2"]
    assert pdns.records(f"v6.{ZONE}", "AAAA") == ["2001:db8::6"]
    # NODATA: the name exists without that type.
    nodata = pdns.query(f"v4.{ZONE}", "AAAA")
    assert pdns.rcode(f"v4.{ZONE}", "AAAA") == "NOERROR" and not nodata.answer
    assert nodata.authority and nodata.authority[0].rdtype == 6  # SOA for negative caching
    # NXDOMAIN for a missing name and for hosts out of DNS.
    for name in (f"nope.{ZONE}", f"blocked.{ZONE}", f"abuse.{ZONE}", f"bob.{ZONE}"):
        assert pdns.rcode(name) == "NXDOMAIN", name
    # Wildcards: the host and any name below it.
    assert pdns.records(f"wild.{ZONE}", "A") == ["192.0.2.3"]
    deep = pdns.query(f"anything.wild.{ZONE}", "A")
    assert [r.to_text() for r in deep.answer[0]] == ["192.0.2.3"] and deep.answer[0].ttl == 120
    assert pdns.rcode(f"x.home.{ZONE}") == "NXDOMAIN"
    # TXT at the host and below it.
    assert pdns.records(f"txt.{ZONE}", "TXT") == ['"hello \\"world\\""']
    assert pdns.records(f"_acme-challenge.txt.{ZONE}", "TXT") == ['"token-123"']
    # TTLs: the host's, else the zone's, else the default.
    assert pdns.query(f"v4.{ZONE}", "A").answer[0].ttl == 60
    assert pdns.query(f"www.{PARENT}", "A").answer[0].ttl == 300
    # Apex: SOA with the database's serial, NS.
    soa = pdns.records(ZONE, "SOA")
    assert soa == [f"ns1.example.org. hostmaster.example.org. {serial} 3600 600 604800 60"]
    assert pdns.records(ZONE, "NS") == ["ns1.example.org.", "ns2.example.org."]
    # Nested zones: each name belongs to the most specific zone.
    assert pdns.records(f"www.{PARENT}", "A") == ["198.51.100.1"]
    assert pdns.records(PARENT, "NS") == ["ns1.example.org."]
    # Names outside every zone.
    assert pdns.rcode("www.example.com") == "REFUSED"


@pytest.fixture
def data(db: Database) -> dict[str, object]:
    return populate(db)


def _config(tmp_path: Path, db_url: str) -> Path:
    return support.write_config_file(tmp_path / "ddserver.conf", db_url, "[recursor]\npoll_interval = 0.1\n")


@pytest.mark.parametrize("mode", ["pipe", "remote-pipe", "remote-socket", "pipe-socket"])
def test_answers_and_updates(mode: str, db: Database, db_url: str, data: dict, tmp_path: Path) -> None:
    with start_pdns(tmp_path / "pdns", _config(tmp_path, db_url), mode, cache=False) as pdns:
        pdns.db = db
        check_answers(pdns)
        # An update shows up, with the SOA serial that went with it.
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.9")
        serial = zones.get(db, ZONE).serial
        # (Pipe modes run one recursor per PowerDNS thread: each catches up on its own, hence the waits.)
        support.wait_until(lambda: pdns.records(f"home.{ZONE}", "A") == ["203.0.113.9"], 10, what="the update")
        support.wait_until(lambda: pdns.records(ZONE, "SOA")[0].split()[2] == str(serial), 10, what="serial")
        # Blocking removes the host with its TXT records below it; unblocking brings them back.
        hosts.set_flags(db, data["txt"].id, blocked=True)
        support.wait_until(lambda: pdns.rcode(f"_acme-challenge.txt.{ZONE}", "TXT") == "NXDOMAIN", 10)
        support.wait_until(lambda: pdns.rcode(f"txt.{ZONE}") == "NXDOMAIN", 10)
        hosts.set_flags(db, data["txt"].id, blocked=False)
        support.wait_until(lambda: pdns.records(f"_acme-challenge.txt.{ZONE}", "TXT") == ['"token-123"'], 10)
        # A deleted host goes, a new one comes.
        hosts.delete(db, data["v4"].id)
        hosts.add(db, data["home"].user_id, f"new.{ZONE}", "h", default_limit=100, ipv4="192.0.2.99")
        support.wait_until(lambda: pdns.records(f"new.{ZONE}", "A") == ["192.0.2.99"], 10)
        support.wait_until(lambda: pdns.rcode(f"v4.{ZONE}") == "NXDOMAIN", 10)
        # A zone TTL change reaches every host that inherits it.
        zones.update(db, data["zone"].id, ttl=33)
        support.wait_until(lambda: pdns.query(f"new.{ZONE}", "A").answer[0].ttl == 33, 10)
        assert pdns.query(f"wild.{ZONE}", "A").answer[0].ttl == 120  # its own TTL stays
        # A deleted zone leaves; its parent takes over the names (and has none of them).
        zones.delete(db, data["zone"].id)
        support.wait_until(lambda: pdns.rcode(f"home.{ZONE}") == "NXDOMAIN", 10)
        assert pdns.records(f"www.{PARENT}", "A") == ["198.51.100.1"]


@pytest.mark.parametrize("abi", [1, 2, 3, 4, 5])
def test_pipe_abi_versions(abi: int, tmp_path: Path) -> None:
    """Every ABI version; the odd ones with PowerDNS's default pipe-timeout (2 s), the others with none, as
    etc/pdns/pdns-pipe.conf has it."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    populate(db)
    timeout = 2000 if abi % 2 else 0
    with start_pdns(tmp_path / "pdns", _config(tmp_path, url), "pipe", abi=abi, pipe_timeout=timeout) as pdns:
        assert f"pipe-timeout={timeout}\n" in (pdns.folder / "pdns.conf").read_text()
        pdns.db = db
        check_answers(pdns)
        transfer = pdns.axfr(ZONE)
        assert transfer.get_rdataset("home", "A")[0].to_text() == "192.0.2.1"


def test_pipe_socket_serves_every_abi_version_at_once(tmp_path: Path) -> None:
    """One --pipe-socket recursor, five PowerDNS servers each speaking another pipe ABI version to it: every
    connection gets the answer layout of its own handshake (the answer cache is shared by all)."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    populate(db)
    with start_pdns(tmp_path / "pdns1", _config(tmp_path, url), "pipe-socket", abi=1) as first:
        assert first.recursor is not None
        sock = first.folder / "recursor.sock"
        others = []
        try:
            for abi in (2, 3, 4, 5):
                folder = tmp_path / f"pdns{abi}"
                folder.mkdir()
                others.append(launch_pdns(folder, pipe_backend(str(sock), abi)))
            # Asked in turn, so the same question comes over connections of every ABI version.
            for _ in range(2):
                for server in (first, *others):
                    server.db = db
                    check_answers(server)
            assert "Format error" not in "".join(server.log() for server in (first, *others))
        finally:
            for server in others:
                server.stop()


@pytest.mark.parametrize("mode", ["pipe", "remote-socket", "pipe-socket"])
def test_axfr(mode: str, tmp_path: Path) -> None:
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    populate(db)
    with start_pdns(tmp_path / "pdns", _config(tmp_path, url), mode) as pdns:
        transfer = pdns.axfr(ZONE)
        names = sorted(str(n) for n in transfer.nodes)
        assert names == sorted(["@", "home", "v4", "v6", "wild", "*.wild", "txt", "_acme-challenge.txt"])
        assert transfer.get_rdataset("@", "SOA")[0].serial == zones.get(db, ZONE).serial
        assert transfer.get_rdataset("*.wild", "A")[0].to_text() == "192.0.2.3"
        assert transfer.get_rdataset("_acme-challenge.txt", "TXT")[0].to_text() == '"token-123"'


@pytest.mark.parametrize("mode", ["pipe", "remote-pipe", "remote-socket", "pipe-socket"])
def test_update_visible_at_once_with_caches_on(mode: str, db: Database, db_url: str, data: dict, tmp_path: Path):
    """Caches at 60 s: the recursor purges what changed, so PowerDNS answers the new data at once."""
    with start_pdns(tmp_path / "pdns", _config(tmp_path, db_url), mode, cache=True, cache_ttl=60) as pdns:
        before = zones.get(db, ZONE).serial
        assert pdns.records(f"home.{ZONE}", "A") == ["192.0.2.1"]
        assert pdns.rcode(f"later.{ZONE}") == "NXDOMAIN"  # now a cached negative answer
        assert pdns.records(ZONE, "SOA")[0].split()[2] == str(before)
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.10")
        hosts.add(db, data["home"].user_id, f"later.{ZONE}", "h", default_limit=100, ipv4="192.0.2.77")
        after = zones.get(db, ZONE).serial
        # Well within the 60 s the caches would otherwise hold the old answers.
        support.wait_until(lambda: pdns.records(f"home.{ZONE}", "A") == ["203.0.113.10"], 10, what="purge")
        support.wait_until(lambda: pdns.records(f"later.{ZONE}", "A") == ["192.0.2.77"], 10, what="purge")
        support.wait_until(lambda: pdns.records(ZONE, "SOA")[0].split()[2] == str(after), 10, what="SOA purge")


def test_the_fixture_starts_pdns_again_when_its_port_was_taken(tmp_path: Path, monkeypatch) -> None:
    """Another test's server may take the port picked for PowerDNS before it binds it: the fixture notices
    that PowerDNS exited on it and starts it on another port (it does not mistake the other server for it)."""
    url = support.new_database_url("sqlite", tmp_path)
    populate(support.create_database(url))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        taken = udp.getsockname()[1]
        tcp.bind(("127.0.0.1", taken))
        tcp.listen()
        ports = iter([taken])
        real = support.free_dns_port
        monkeypatch.setattr(support, "free_dns_port", lambda: next(ports, None) or real())
        with start_pdns(tmp_path / "pdns", _config(tmp_path, url), "remote-socket") as pdns:
            assert pdns.port != taken
            assert pdns.records(f"home.{ZONE}", "A") == ["192.0.2.1"]
            assert "Address already in use" in pdns.process.log()


def test_pipe_coprocess_that_exits_is_replaced(tmp_path: Path) -> None:
    """Without pipe-timeout, a coprocess's way out when it is stuck is to exit (its watchdog): PowerDNS
    starts another and answers on. Here every coprocess is killed while PowerDNS runs."""
    url = support.new_database_url("sqlite", tmp_path)
    populate(support.create_database(url))
    with start_pdns(tmp_path / "pdns", _config(tmp_path, url), "pipe", pipe_timeout=0) as pdns:
        for _ in range(6):  # a question for each thread, so that each has its coprocess
            assert pdns.records(f"home.{ZONE}", "A") == ["192.0.2.1"]
        before = _children(pdns.process.pid)
        assert before
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        # The question that meets a dead coprocess may get SERVFAIL; the ones after it are answered.
        support.wait_until(lambda: pdns.rcode(f"home.{ZONE}") == "NOERROR", 20, what="an answer again")
        for _ in range(6):
            support.wait_until(lambda: pdns.records(f"home.{ZONE}", "A") == ["192.0.2.1"], 20)
        assert _children(pdns.process.pid) and not set(_children(pdns.process.pid)) & set(before)
        assert pdns.process.alive()


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (PowerDNS's coprocesses)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return [child for child in found if Path(f"/proc/{child}").exists() and _state(child) != "Z"]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
