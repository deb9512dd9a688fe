"""Signed zones through a real PowerDNS 4.7 (remote backend, remote-dnssec=yes, caches on), validated by delv with
the zone's KSK as its trust anchor: hosts, NXDOMAIN and NODATA proofs, the apex, an update, and a ZSK rollover
step by step. The keys are made by the ``ddserver`` command; private key material never appears in its
output nor in PowerDNS's or the recursor's log."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import dns.xfr
import pytest

from ddserver import cli, sealing, secrets
from ddserver.db import Database
from ddserver.store import dnssec as dnssec_store
from ddserver.store import hosts, users, zones
from tests import support
from tests.pdns import PdnsServer, start_pdns

ZONE = "signed.example.org"
DATA_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def _populate(db: Database) -> dict[str, hosts.Host]:
    zones.add(db, ZONE, ["ns1.example.org", "ns2.example.org"], "hostmaster.example.org")
    alice = users.add(db, "alice", "alice@example.org", password_hash="x")

    def host(name: str, **kw: object) -> hosts.Host:
        return hosts.add(db, alice.id, name, secrets.hash_host_secret("s"), default_limit=100, **kw)  # type: ignore[arg-type]

    return {
        "home": host(f"home.{ZONE}", ipv4="192.0.2.1", ipv6="2001:db8::1"),
        "v4": host(f"v4.{ZONE}", ipv4="192.0.2.2"),
    }


def ddserver(config: Path, *argv: str) -> tuple[int, str]:
    """Run the ``ddserver`` command in-process: (exit status, stdout and stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(["--config", str(config), *argv])
    return code, out.getvalue()


def _anchors(db: Database, folder: Path) -> Path:
    """A delv anchor file holding the zone's KSKs."""
    _, _, keys = dnssec_store.state(db, ZONE)
    lines = [f'  "{ZONE}." static-key {k.flags} 3 {k.algorithm} "{k.public_key}";' for k in keys if k.flags == 257]
    path = folder / "anchors.conf"
    path.write_text("trust-anchors {\n" + "\n".join(lines) + "\n};\n")
    return path


def delv(pdns: PdnsServer, anchors: Path, name: str, rdtype: str) -> str:
    binary = support.require_binary("delv", "/usr/bin/delv")
    result = subprocess.run(
        [binary, f"@{pdns.host}", "-p", str(pdns.port), "-a", str(anchors), f"+root={ZONE}", "+nocrypto",
         name, rdtype],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return result.stdout + result.stderr


def pdnsutil(pdns: PdnsServer, *argv: str) -> subprocess.CompletedProcess[str]:
    binary = support.require_binary("pdnsutil", "/usr/bin/pdnsutil")
    return subprocess.run(
        [binary, f"--config-dir={pdns.folder}", *argv], capture_output=True, text=True, timeout=30, check=False
    )


def validated(pdns: PdnsServer, anchors: Path, name: str, rdtype: str, expect: str = "") -> str:
    """delv's answer, asserting it is fully validated (and holds ``expect``)."""
    text = delv(pdns, anchors, name, rdtype)
    assert "fully validated" in text and expect in text, text + "\n" + pdns.log()[-3000:]
    return text


def _private_material(db: Database) -> list[str]:
    """The base64 of every private key of the zone, opened."""
    sealer = sealing.Sealer(sealing.parse_key(DATA_KEY))
    _, _, keys = dnssec_store.state(db, ZONE)
    found = []
    for key in keys:
        text = sealer.unseal(key.private_key, "dnssec:" + ZONE)
        found.append(text.split("PrivateKey: ")[1].strip())
    return found


def test_signed_answers_validate_and_a_zsk_rollover_keeps_them_valid(db: Database, db_url: str, tmp_path: Path) -> None:
    check_signed_zone(db, db_url, tmp_path, "ecdsa256")


def test_ed25519_validates_too(tmp_path: Path) -> None:
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    check_signed_zone(db, url, tmp_path, "ed25519")
    db.close_all()


def check_signed_zone(db: Database, db_url: str, tmp_path: Path, algorithm: str) -> None:
    """Sign with ``algorithm`` and check every kind of answer through PowerDNS with delv, an update, a ZSK
    rollover step by step, PowerDNS's own view of the keys, and that no private key shows anywhere."""
    data = _populate(db)
    config = support.write_config_file(
        tmp_path / "ddserver.conf", db_url, f"data_key = {DATA_KEY}\n[recursor]\npoll_interval = 0.1\n"
    )
    code, output = ddserver(config, "zone", "dnssec", ZONE, "on", "--algorithm", algorithm)
    assert code == 0, output
    assert f"{ZONE}. IN DS " in output
    code, ds_output = ddserver(config, "zone", "ds", ZONE)
    assert code == 0 and ds_output.strip() and ds_output.strip() in output
    secrets_in_db = _private_material(db)
    anchors = _anchors(db, tmp_path)
    with start_pdns(tmp_path / "pdns", config, "remote-socket", cache=True, extra="remote-dnssec=yes\n") as pdns:
        validated(pdns, anchors, f"home.{ZONE}", "A", "192.0.2.1")
        validated(pdns, anchors, f"home.{ZONE}", "AAAA", "2001:db8::1")
        validated(pdns, anchors, f"missing.{ZONE}", "A", "NXDOMAIN")
        validated(pdns, anchors, f"v4.{ZONE}", "AAAA", "NXRRSET")
        validated(pdns, anchors, ZONE, "SOA", "hostmaster.example.org")
        validated(pdns, anchors, ZONE, "NS", "ns2.example.org")
        # An update, with PowerDNS's caches on: the signed new address soon.
        hosts.set_addresses(db, data["home"].id, ipv4="203.0.113.9")
        support.wait_until(
            lambda: "203.0.113.9" in delv(pdns, anchors, f"home.{ZONE}", "A"), 10, what="the signed new address"
        )
        validated(pdns, anchors, f"home.{ZONE}", "A", "203.0.113.9")

        # ZSK rollover, pre-publish: a new ZSK published but not signing; then signing instead of the old
        # one (still published); then the old one removed. Every step validates.
        _, _, keys = dnssec_store.state(db, ZONE)
        (old_zsk,) = [k for k in keys if k.flags == 256]
        code, output = ddserver(config, "zone", "key", "add", ZONE)
        assert code == 0, output
        _, _, keys = dnssec_store.state(db, ZONE)
        (new_zsk,) = [k for k in keys if k.flags == 256 and k.id != old_zsk.id]
        assert not new_zsk.active and new_zsk.published
        support.wait_until(
            lambda: str(new_zsk.tag) in delv(pdns, anchors, ZONE, "DNSKEY"), 10, what="the new ZSK published"
        )
        validated(pdns, anchors, f"home.{ZONE}", "A", "203.0.113.9")
        assert ddserver(config, "zone", "key", "activate", ZONE, str(new_zsk.id))[0] == 0
        assert ddserver(config, "zone", "key", "deactivate", ZONE, str(old_zsk.id))[0] == 0
        support.wait_until(
            lambda: f" {new_zsk.tag} {ZONE}. " in delv(pdns, anchors, f"v4.{ZONE}", "A"), 10, what="the new ZSK signing"
        )
        validated(pdns, anchors, f"v4.{ZONE}", "A", "192.0.2.2")
        validated(pdns, anchors, f"home.{ZONE}", "AAAA", "2001:db8::1")
        assert ddserver(config, "zone", "key", "remove", ZONE, str(old_zsk.id))[0] == 0
        support.wait_until(
            lambda: str(old_zsk.tag) not in delv(pdns, anchors, ZONE, "DNSKEY"), 10, what="the old ZSK gone"
        )
        validated(pdns, anchors, ZONE, "DNSKEY", str(new_zsk.tag))
        validated(pdns, anchors, f"home.{ZONE}", "A", "203.0.113.9")
        validated(pdns, anchors, f"gone.{ZONE}", "A", "NXDOMAIN")
        # PowerDNS's own tool reads the keys through the recursor and is refused when it would change them.
        shown = pdnsutil(pdns, "show-zone", ZONE)
        assert shown.returncode == 0 and "NARROW hashed NSEC3" in shown.stdout, shown.stdout
        # PowerDNS derived the key tags and the DS from the private keys it was given: ours agree.
        assert f"tag = {new_zsk.tag}," in shown.stdout
        ds = ddserver(config, "zone", "ds", ZONE)[1].strip()
        assert f"IN DS {ds.split(' IN DS ')[1].lower()} ; ( SHA256 digest )" in shown.stdout
        refused = pdnsutil(pdns, "deactivate-zone-key", ZONE, str(new_zsk.id))
        assert refused.returncode != 0 or "ddserver zone key deactivate" in pdns.log()
        support.wait_until(lambda: "use 'ddserver zone key deactivate'" in pdns.log(), 10, what="the refusal logged")
        assert dnssec_store.state(db, ZONE)[2][-1].active
        # NSEC3 narrow has no chain to transfer: PowerDNS refuses AXFR of the signed zone (docs/dnssec.md).
        with pytest.raises(dns.xfr.TransferError):
            pdns.axfr(ZONE)
        log = pdns.log()
    for material in secrets_in_db:
        assert material not in output + ds_output + log


def test_pipe_backend_serves_a_signed_zone_unsigned_and_says_so(tmp_path: Path) -> None:
    """A node whose recursor speaks the pipe protocol cannot sign: it answers (unsigned) and logs an error
    naming the zone, rather than staying silent."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    _populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, f"data_key = {DATA_KEY}\n")
    assert ddserver(config, "zone", "dnssec", ZONE, "on")[0] == 0
    with start_pdns(tmp_path / "pdns", config, "pipe-socket") as pdns:
        answer = pdns.query(f"home.{ZONE}", "A")
        assert [r.to_text() for rrset in answer.answer for r in rrset] == ["192.0.2.1"]
        support.wait_until(
            lambda: f"zone {ZONE} has DNSSEC on, but the pipe backend cannot serve signatures" in pdns.log(),
            10,
            what="the error in the recursor's log",
        )
    db.close_all()


def test_keys_are_served_from_the_snapshot_while_the_database_is_down(tmp_path: Path) -> None:
    """The snapshot holds the keys (sealed): a recursor started while the database is unreachable still gives
    PowerDNS the keys, so the zone stays signed."""
    import json
    import os

    from ddserver.recursor import snapshot
    from ddserver.recursor.follower import Follower

    (tmp_path / "db").mkdir()
    url = support.new_database_url("sqlite", tmp_path / "db")
    db = support.create_database(url)
    _populate(db)
    config = support.write_config_file(tmp_path / "ddserver.conf", url, f"data_key = {DATA_KEY}\n")
    assert ddserver(config, "zone", "dnssec", ZONE, "on")[0] == 0
    private = _private_material(db)
    follower = Follower(db)
    follower.load()
    folder = tmp_path / "snapshots"
    folder.mkdir(mode=0o700)
    assert follower.index is not None
    snapshot.write(snapshot.snapshot_path(folder, url), follower.index, follower.cursor)
    assert not any(p.encode() in snapshot.snapshot_path(folder, url).read_bytes() for p in private)  # sealed
    db.close_all()
    (tmp_path / "db").rename(tmp_path / "gone")
    requests = [
        {"method": "initialize", "parameters": {}},
        {"method": "getDomainKeys", "parameters": {"name": f"{ZONE}."}},
        {"method": "getAllDomainMetadata", "parameters": {"name": f"{ZONE}."}},
    ]
    result = subprocess.run(
        [support.console_script("ddserver-recursor"), "--config", str(config), "--remote-pipe"],
        input="".join(json.dumps(r) + "\n" for r in requests).encode(),
        capture_output=True,
        timeout=60,
        env=dict(os.environ, DDSERVER_RECURSOR_SNAPSHOT_DIR=str(folder), DDSERVER_RECURSOR_PURGE="none"),
    )
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    keys = answers[1]["result"]
    assert sorted(k["flags"] for k in keys) == [256, 257], result.stderr.decode()
    assert all(k["content"].startswith("Private-key-format: v1.2\n") for k in keys)
    # (and ALLOW-AXFR-FROM: the zone has no transfer keys, docs/dnssec.md#secondaries)
    assert answers[2]["result"] == {
        "NSEC3PARAM": ["1 0 0 -"],
        "NSEC3NARROW": ["1"],
        "ALLOW-AXFR-FROM": ["127.0.0.0/8", "::1"],
    }
    stderr = result.stderr.decode()
    assert "serving STALE data from the snapshot" in stderr
    assert not any(p in stderr for p in private)


def test_pdnsutil_changes_keys_only_when_the_recursor_allows_it(tmp_path: Path) -> None:
    """With ``[recursor] key_changes = yes``, pdnsutil adds a ZSK (inactive), activates it (PowerDNS serves it
    and signs with it, delv still validates) and removes it, through the recursor into the database, the
    private key sealed; by default the same command is refused and nothing changes."""
    url = support.new_database_url("sqlite", tmp_path)
    db = support.create_database(url)
    _populate(db)
    config = support.write_config_file(
        tmp_path / "ddserver.conf", url, f"data_key = {DATA_KEY}\n[recursor]\npoll_interval = 0.1\n"
    )
    assert ddserver(config, "zone", "dnssec", ZONE, "on")[0] == 0
    before = dnssec_store.state(db, ZONE)[2]
    anchors = _anchors(db, tmp_path)
    with start_pdns(tmp_path / "pdns1", config, "remote-socket", cache=True, extra="remote-dnssec=yes\n") as pdns:
        refused = pdnsutil(pdns, "add-zone-key", ZONE, "zsk", "inactive", "ecdsa256")
        assert refused.returncode != 0, refused.stdout + refused.stderr
        support.wait_until(lambda: "use 'ddserver zone key add'" in pdns.log(), 10, what="the refusal logged")
    assert dnssec_store.state(db, ZONE)[2] == before

    allowed = {"DDSERVER_RECURSOR_KEY_CHANGES": "yes"}
    port = support.free_port()
    api = (
        f"remote-dnssec=yes\nwebserver=yes\napi=yes\napi-key=k\nwebserver-address=127.0.0.1\n"
        f"webserver-port={port}\nwebserver-allow-from=127.0.0.1/32\n"
    )
    with start_pdns(tmp_path / "pdns2", config, "remote-socket", cache=True, extra=api, env=allowed) as pdns:
        validated(pdns, anchors, f"home.{ZONE}", "A", "192.0.2.1")
        added = pdnsutil(pdns, "add-zone-key", ZONE, "zsk", "inactive", "ecdsa256")
        assert added.returncode == 0, added.stdout + added.stderr + pdns.log()[-3000:]
        key_id = int(added.stdout.strip().splitlines()[-1])
        (key,) = [k for k in dnssec_store.state(db, ZONE)[2] if k.id == key_id]
        assert (key.flags, key.algorithm, key.active, key.published) == (256, 13, False, True)
        assert sealing.is_sealed(key.private_key)
        private = _private_material(db)
        assert support.rows_naming(db, private) == []  # only sealed at rest
        support.wait_until(lambda: str(key.tag) in delv(pdns, anchors, ZONE, "DNSKEY"), 10, what="the new ZSK")
        validated(pdns, anchors, f"home.{ZONE}", "A", "192.0.2.1")

        activated = pdnsutil(pdns, "activate-zone-key", ZONE, str(key_id))
        assert activated.returncode == 0, activated.stdout + activated.stderr
        assert [k.active for k in dnssec_store.state(db, ZONE)[2] if k.id == key_id] == [True]
        support.wait_until(
            lambda: f" {key.tag} {ZONE}. " in delv(pdns, anchors, f"v4.{ZONE}", "A"), 10, what="the new ZSK signing"
        )
        validated(pdns, anchors, f"v4.{ZONE}", "A", "192.0.2.2")
        validated(pdns, anchors, f"missing.{ZONE}", "A", "NXDOMAIN")
        shown = pdnsutil(pdns, "show-zone", ZONE)
        assert f"tag = {key.tag}," in shown.stdout, shown.stdout

        for step in ("deactivate-zone-key", "remove-zone-key"):
            done = pdnsutil(pdns, step, ZONE, str(key_id))
            assert done.returncode == 0, step + done.stdout + done.stderr
        assert [k.id for k in dnssec_store.state(db, ZONE)[2]] == [k.id for k in before]
        support.wait_until(lambda: str(key.tag) not in delv(pdns, anchors, ZONE, "DNSKEY"), 10, what="the new ZSK gone")
        validated(pdns, anchors, f"home.{ZONE}", "A", "192.0.2.1")
        # PowerDNS's HTTP API makes the same calls.
        url = f"http://127.0.0.1:{port}/api/v1/servers/localhost/zones/{ZONE}./cryptokeys"
        made = json.loads(_api(url, "POST", {"keytype": "zsk", "active": False, "algorithm": "ed25519"}))
        (key,) = [k for k in dnssec_store.state(db, ZONE)[2] if k.id == made["id"]]
        assert (key.algorithm, key.active, sealing.is_sealed(key.private_key)) == (15, False, True)
        _api(f"{url}/{key.id}", "DELETE")
        assert [k.id for k in dnssec_store.state(db, ZONE)[2]] == [k.id for k in before]
        # Metadata stays ddserver's: PowerDNS's tools cannot change it.
        pdnsutil(pdns, "set-nsec3", ZONE, "1 0 1 ab")
        support.wait_until(lambda: "use 'ddserver zone dnssec'" in pdns.log(), 10, what="set-nsec3 refused")
        assert dnssec_store.state(db, ZONE)[1] == "1 0 0 -"
        log = pdns.log()
    assert not any(p in log for p in private)
    db.close_all()


def _api(url: str, method: str, body: object = None) -> str:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(), headers={"X-API-Key": "k"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {url}: {exc.code} {exc.read().decode()}") from None
