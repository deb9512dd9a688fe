"""DNSSEC without PowerDNS: keys, key tags and DS records checked against dnspython, the remote backend's key and
metadata calls, the pipe backend's refusal to stay silent about a signed zone, snapshots that keep the keys, and
the ``ddserver zone dnssec`` command's refusals (pipe setup, DS not confirmed removed) on both databases."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ddserver import cli, sealing
from ddserver.db import Database
from ddserver.dns import dnssec, pipe, remote, zoneindex
from ddserver.recursor import snapshot
from ddserver.store import dnssec as dnssec_store
from ddserver.store import zones
from ddserver.store.changes import FeedCursor
from ddserver.store.dnsdata import ZoneRow
from tests import support

with warnings.catch_warnings():  # dnspython's DSA support, deprecated by cryptography
    warnings.simplefilter("ignore")
    import dns.dnssec

DATA_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.mark.parametrize("algorithm", [13, 15])
@pytest.mark.parametrize("flags", [257, 256])
def test_key_tag_dnskey_and_ds_agree_with_dnspython(algorithm: int, flags: int) -> None:
    key = dnssec.generate(flags, algorithm)
    rdata = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, dnssec.dnskey_text(flags, algorithm, key.public_key)
    )
    assert dns.dnssec.key_id(rdata) == key.tag  # type: ignore[arg-type]
    ds = dns.dnssec.make_ds(dns.name.from_text("Dyn.Example.org."), rdata, "SHA256")  # type: ignore[arg-type]
    assert dnssec.ds_text("dyn.example.org", flags, algorithm, key.public_key) == ds.to_text().upper()
    # The private key text is PowerDNS's v1.2 format, and its key is the public key's pair.
    lines = key.private_text.splitlines()
    assert lines[0] == "Private-key-format: v1.2"
    assert lines[1].startswith(f"Algorithm: {algorithm} (")
    raw = base64.b64decode(lines[2].removeprefix("PrivateKey: "))
    if algorithm == 13:
        numbers = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()).public_key().public_numbers()
        public = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    else:
        public = ed25519.Ed25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw()
    assert base64.b64encode(public).decode() == key.public_key
    assert key.private_text not in repr(key)


SEALER = sealing.Sealer(sealing.parse_key(DATA_KEY))
PRIVATE = dnssec.generate(257, 13).private_text
SIGNED = ZoneRow(
    3, "dyn.example.org", ("ns1.example.org",), "hostmaster.example.org", 9, 3600, 600, 604800, 60, 3600, None,
    True, "1 0 0 -", ((7, 257, True, True, SEALER.seal(PRIVATE, "dnssec:dyn.example.org")),),
)  # fmt: skip
PLAIN = ZoneRow(
    4, "plain.example.org", ("ns1.example.org",), "hostmaster.example.org", 1, 3600, 600, 604800, 60, 3600, None
)
INDEX = zoneindex.build([SIGNED, PLAIN], [("home.dyn.example.org", 3, "192.0.2.1", None, None, 0)], [])


def call(handler: remote.RemoteHandler, method: str, **params: object) -> object:
    return json.loads(handler.handle(json.dumps({"method": method, "parameters": params})))["result"]


def test_remote_backend_gives_keys_and_derived_metadata() -> None:
    handler = remote.RemoteHandler(lambda: INDEX, unseal=SEALER.unseal)
    keys = call(handler, "getDomainKeys", name="Dyn.example.org.")
    assert keys == [{"id": 7, "flags": 257, "active": True, "published": True, "content": PRIVATE}]
    assert call(handler, "getDomainKeys", name="plain.example.org.") == []
    assert call(handler, "getDomainKeys", name="other.example.") == []
    assert call(handler, "getAllDomainMetadata", name="dyn.example.org.") == {
        "NSEC3PARAM": ["1 0 0 -"],
        "NSEC3NARROW": ["1"],
    }
    assert call(handler, "getDomainMetadata", name="dyn.example.org.", kind="NSEC3PARAM") == ["1 0 0 -"]
    assert call(handler, "getDomainMetadata", name="dyn.example.org.", kind="PRESIGNED") == []
    assert call(handler, "getAllDomainMetadata", name="plain.example.org.") == {}
    assert call(handler, "getBeforeAndAfterNamesAbsolute", id=3, qname="x") is False


def test_remote_backend_refuses_key_and_metadata_writes(caplog: pytest.LogCaptureFixture) -> None:
    handler = remote.RemoteHandler(lambda: INDEX, unseal=SEALER.unseal)
    with caplog.at_level(logging.WARNING):
        for method in ("addDomainKey", "removeDomainKey", "activateDomainKey", "deactivateDomainKey",
                       "publishDomainKey", "unpublishDomainKey", "setDomainMetadata"):  # fmt: skip
            answer = json.loads(
                handler.handle(json.dumps({"method": method, "parameters": {"name": "dyn.example.org."}}))
            )
            assert answer["result"] is False and "ddserver" in answer["log"][0]
    assert "use 'ddserver zone key activate'" in caplog.text
    assert "allow it with [recursor] key_changes = yes" in caplog.text


def test_remote_backend_without_the_data_key_logs_an_unsigned_zone(caplog: pytest.LogCaptureFixture) -> None:
    other = sealing.Sealer(sealing.parse_key(sealing.new_key()))
    handler = remote.RemoteHandler(lambda: INDEX, unseal=other.unseal)
    with caplog.at_level(logging.ERROR):
        assert call(handler, "getDomainKeys", name="dyn.example.org.") is False
        assert call(handler, "getDomainKeys", name="dyn.example.org.") is False
    assert caplog.text.count("UNSIGNED") == 1
    assert PRIVATE not in caplog.text


def test_pipe_backend_says_a_signed_zone_goes_out_unsigned(caplog: pytest.LogCaptureFixture) -> None:
    session = pipe.PipeSession(lambda: INDEX)
    session.handle("HELO\t3")
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            assert "192.0.2.1" in session.handle("Q\thome.dyn.example.org\tIN\tA\t-1\t192.0.2.5\t192.0.2.1\t0.0.0.0/0")
        session.handle("Q\tplain.example.org\tIN\tSOA\t-1\t192.0.2.5\t192.0.2.1\t0.0.0.0/0")
    assert caplog.text.count("pipe backend cannot serve signatures") == 1
    assert "plain.example.org" not in caplog.text


def test_snapshot_keeps_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "index.snapshot"
    snapshot.write(path, INDEX, FeedCursor.at(5, [], None, None))
    snap = snapshot.read(path, 60)
    assert snap is not None
    assert snap.index.zones["dyn.example.org"].row == SIGNED
    assert snap.index.zones["dyn.example.org"].signed and not snap.index.zones["plain.example.org"].signed


def _ddserver(config: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(["--config", str(config), *argv])
    return code, out.getvalue()


def test_the_command_signs_refuses_and_never_prints_a_private_key(db: Database, db_url: str, tmp_path: Path) -> None:
    zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    config = support.write_config_file(tmp_path / "c.conf", db_url, f"data_key = {DATA_KEY}\n")
    pipe_config = support.write_config_file(
        tmp_path / "p.conf", db_url, f"data_key = {DATA_KEY}\n[recursor]\nbackend = pipe\n"
    )
    code, out = _ddserver(pipe_config, "zone", "dnssec", "dyn.example.org", "on")
    assert code == 1 and "pipe backend cannot serve DNSSEC" in out and len(out.splitlines()) == 1
    code, out = _ddserver(config, "zone", "ds", "dyn.example.org")
    assert code == 1 and "not signed" in out
    code, out = _ddserver(config, "zone", "dnssec", "dyn.example.org", "on", "--algorithm", "rsa")
    assert code == 1 and "ecdsa256" in out
    serial = zones.get(db, "dyn.example.org").serial
    code, out = _ddserver(config, "zone", "dnssec", "dyn.example.org", "on")
    assert code == 0, out
    assert zones.get(db, "dyn.example.org").serial > serial  # the feed has it: followers reload the zone
    on, nsec3param, keys = dnssec_store.state(db, "dyn.example.org")
    assert on and nsec3param == "1 0 0 -" and sorted(k.flags for k in keys) == [256, 257]
    (ksk,) = [k for k in keys if k.flags == 257]
    assert f"dyn.example.org. IN DS {dnssec.ds_text('dyn.example.org', 257, 13, ksk.public_key)}" in out
    code, listing = _ddserver(config, "zone", "key", "list", "dyn.example.org")
    assert code == 0 and ksk.public_key in listing
    for key in keys:
        assert sealing.is_sealed(key.private_key)
        private = SEALER.unseal(key.private_key, "dnssec:dyn.example.org").split("PrivateKey: ")[1].strip()
        assert private not in out + listing
        assert support.rows_naming(db, [private]) == []  # only sealed at rest
    # Off: only once the DS is gone from the parent.
    code, out = _ddserver(config, "zone", "dnssec", "dyn.example.org", "off")
    assert code == 1 and "DS" in out and "--confirm-ds-removed" in out
    assert dnssec_store.state(db, "dyn.example.org")[0]
    code, out = _ddserver(config, "zone", "dnssec", "dyn.example.org", "off", "--confirm-ds-removed")
    assert code == 0 and "2 keys deleted" in out
    assert dnssec_store.state(db, "dyn.example.org") == (False, "1 0 0 -", [])
    code, out = _ddserver(config, "zone", "key", "activate", "dyn.example.org", "99")
    assert code == 1 and "no key 99" in out


@pytest.mark.parametrize("algorithm", [13, 15])
def test_a_key_made_by_powerdns_gets_its_public_key_and_tag(algorithm: int) -> None:
    made = dnssec.generate(256, algorithm)
    read = dnssec.from_private_text(made.private_text, 256)
    assert (read.public_key, read.tag, read.algorithm, read.private_text) == (
        made.public_key, made.tag, algorithm, made.private_text,
    )  # fmt: skip
    rsa = "Private-key-format: v1.2\nAlgorithm: 8 (RSASHA256)\nModulus: AQAB\nPrivateKey: AQAB\n"
    for text, flags, why in [
        (rsa, 256, "algorithm 8"),
        (made.private_text, 1, "flags 1"),
        ("Algorithm: 13\nPrivateKey: AAAA\n", 256, "v1.2"),
        (made.private_text.replace("PrivateKey: ", "PrivateKey: !"), 256, "base64"),
    ]:
        with pytest.raises(dnssec.ValidationError, match=why) as raised:
            dnssec.from_private_text(text, flags)
        assert made.private_text.split("PrivateKey: ")[1].strip() not in str(raised.value)


class Writer:
    """A key writer that keeps what it is given (or fails as the database would)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.changes: list[remote.KeyChange] = []
        self.fail = fail

    def __call__(self, change: remote.KeyChange) -> int:
        if self.fail is not None:
            raise self.fail
        self.changes.append(change)
        return 42 if change.action is remote.KeyAction.ADD else change.key_id


def test_remote_backend_passes_key_changes_to_the_writer(caplog: pytest.LogCaptureFixture) -> None:
    writer = Writer()
    handler = remote.RemoteHandler(lambda: INDEX, unseal=SEALER.unseal, write_key=writer)
    new = dnssec.generate(256, 13)
    key = {"flags": 256, "active": False, "published": True, "content": new.private_text}
    with caplog.at_level(logging.INFO):
        assert call(handler, "addDomainKey", name="Dyn.Example.org.", key=key) == 42
        for method in ("activateDomainKey", "deactivateDomainKey", "publishDomainKey", "unpublishDomainKey",
                       "removeDomainKey"):  # fmt: skip
            assert call(handler, method, name="dyn.example.org.", id=7) is True
    added = writer.changes[0]
    assert (added.action, added.zone, added.active, added.published) == ("adddomainkey", "dyn.example.org", False, True)
    assert added.key is not None and added.key.tag == new.tag and added.key.private_text == new.private_text
    assert [(c.action.value, c.key_id) for c in writer.changes[1:]] == [
        ("activatedomainkey", 7), ("deactivatedomainkey", 7), ("publishdomainkey", 7), ("unpublishdomainkey", 7),
        ("removedomainkey", 7),
    ]  # fmt: skip
    # An unsigned zone, an unknown one, a key ddserver cannot read, metadata: refused, nothing written.
    assert call(handler, "addDomainKey", name="plain.example.org.", key=key) is False
    assert call(handler, "activateDomainKey", name="other.example.", id=7) is False
    rsa = dict(key, content="Private-key-format: v1.2\nAlgorithm: 8 (RSASHA256)\nPrivateKey: AQAB\n")
    assert call(handler, "addDomainKey", name="dyn.example.org.", key=rsa) is False
    assert call(handler, "addDomainKey", name="dyn.example.org.", key={"flags": 256}) is False
    assert call(handler, "activateDomainKey", name="dyn.example.org.", id="7") is False
    assert call(handler, "setDomainMetadata", name="dyn.example.org.", kind="NSEC3PARAM", value=["1 0 1 ab"]) is False
    assert len(writer.changes) == 6
    assert "'ddserver zone dnssec plain.example.org on'" in caplog.text
    assert new.private_text.split("PrivateKey: ")[1].strip() not in caplog.text
    # A database that fails: false with a log line, never an exception.
    from ddserver.errors import DatabaseUnavailable

    failing = remote.RemoteHandler(lambda: INDEX, write_key=Writer(DatabaseUnavailable("database: lost connection")))
    with caplog.at_level(logging.WARNING):
        assert call(failing, "addDomainKey", name="dyn.example.org.", key=key) is False
        assert call(failing, "removeDomainKey", name="dyn.example.org.", id=7) is False
    assert "removedomainkey for dyn.example.org failed: database: lost connection" in caplog.text


def test_the_recursor_writes_key_changes_only_when_allowed(db: Database, db_url: str, tmp_path: Path) -> None:
    from ddserver.config import load_config
    from ddserver.errors import NotFound
    from ddserver.recursor import daemon

    zones.add(db, "dyn.example.org", ["ns1.example.org"], "hostmaster.example.org")
    config = support.write_config_file(tmp_path / "c.conf", db_url, f"data_key = {DATA_KEY}\n")
    assert _ddserver(config, "zone", "dnssec", "dyn.example.org", "on")[0] == 0
    from ddserver.recursor.follower import Follower

    assert "write_key" not in daemon.handler_options(load_config(config), Follower(db))
    allowed = support.write_config_file(
        tmp_path / "a.conf", db_url, f"data_key = {DATA_KEY}\n[recursor]\nkey_changes = yes\n"
    )
    write = daemon.handler_options(load_config(allowed), Follower(db))["write_key"]
    new = dnssec.generate(256, 13)
    serial = zones.get(db, "dyn.example.org").serial
    key_id = write(remote.KeyChange(remote.KeyAction.ADD, "dyn.example.org", key=new, active=False, published=True))
    assert zones.get(db, "dyn.example.org").serial > serial  # in the change feed: every recursor reloads
    (stored,) = [k for k in dnssec_store.state(db, "dyn.example.org")[2] if k.id == key_id]
    assert (stored.flags, stored.tag, stored.public_key, stored.active, stored.published) == (
        256, new.tag, new.public_key, False, True,
    )  # fmt: skip
    assert SEALER.unseal(stored.private_key, "dnssec:dyn.example.org") == new.private_text
    assert support.rows_naming(db, [new.private_text.split("PrivateKey: ")[1].strip()]) == []
    write(remote.KeyChange(remote.KeyAction.ACTIVATE, "dyn.example.org", key_id))
    write(remote.KeyChange(remote.KeyAction.UNPUBLISH, "dyn.example.org", key_id))
    (stored,) = [k for k in dnssec_store.state(db, "dyn.example.org")[2] if k.id == key_id]
    assert stored.active and not stored.published
    write(remote.KeyChange(remote.KeyAction.REMOVE, "dyn.example.org", key_id))
    assert key_id not in [k.id for k in dnssec_store.state(db, "dyn.example.org")[2]]
    with pytest.raises(NotFound):
        write(remote.KeyChange(remote.KeyAction.DEACTIVATE, "dyn.example.org", key_id))
