"""Secrets sealed at rest: round trip, context binding, rotation, and one-line config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver import sealing
from ddserver.config import Config
from ddserver.errors import ConfigError


def _config(**auth: object) -> Config:
    return Config().replace("auth", **auth)


def test_round_trip_and_context() -> None:
    sealer = sealing.Sealer(sealing.parse_key(sealing.new_key()))
    sealed = sealer.seal("private key", "dnssec:example.org")
    assert sealing.is_sealed(sealed) and "private" not in sealed
    assert sealer.unseal(sealed, "dnssec:example.org") == "private key"
    assert sealer.seal("x", "c") != sealer.seal("x", "c")  # a fresh nonce each time
    with pytest.raises(sealing.SealingError, match="altered or moved"):
        sealer.unseal(sealed, "dnssec:example.com")


@pytest.mark.parametrize("bad", ["", "plain", "sealed1:abc", "sealed1:00000000:AAAA", "sealed1:x:y:z"])
def test_malformed_values(bad: str) -> None:
    sealer = sealing.Sealer(sealing.parse_key(sealing.new_key()))
    with pytest.raises(sealing.SealingError):
        sealer.unseal(bad)


def test_tampered_value() -> None:
    sealer = sealing.Sealer(sealing.parse_key(sealing.new_key()))
    sealed = sealer.seal("secret")
    head, blob = sealed.rsplit(":", 1)
    flipped = blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1]
    with pytest.raises(sealing.SealingError):
        sealer.unseal(f"{head}:{flipped}")


def test_rotation_keeps_old_values_readable() -> None:
    old_text, new_text = sealing.new_key(), sealing.new_key()
    old = sealing.load(_config(data_key=old_text))
    sealed = old.seal("secret", "ctx")
    rotated = sealing.load(_config(data_key=new_text, old_data_keys=(old_text,)))
    assert rotated.unseal(sealed, "ctx") == "secret"
    resealed = rotated.reseal(sealed, "ctx")
    assert sealing.load(_config(data_key=new_text)).unseal(resealed, "ctx") == "secret"
    with pytest.raises(sealing.SealingError, match="not configured"):
        sealing.load(_config(data_key=new_text)).unseal(sealed, "ctx")


def test_key_file_written_once_and_read(tmp_path: Path) -> None:
    config = _config(data_key_file=str(tmp_path / "k" / "ddserver.datakey"))
    assert not sealing.load(config).available
    assert sealing.ensure_key_file(config)
    assert not sealing.ensure_key_file(config)
    assert (tmp_path / "k" / "ddserver.datakey").stat().st_mode & 0o777 == 0o600
    sealer = sealing.load(config, required=True)
    assert sealer.unseal(sealer.seal("x")) == "x"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: \[auth\] data_key: expected 32 bytes"):
        sealing.load(_config(data_key="c2hvcnQ="))
    (tmp_path / "bad").write_text("not base64 at all!\n")
    with pytest.raises(ConfigError, match=r"data_key_file = .*bad.*expected 32 bytes"):
        sealing.load(_config(data_key_file=str(tmp_path / "bad")))
    with pytest.raises(ConfigError, match=r"old_data_keys"):
        sealing.load(_config(data_key=sealing.new_key(), old_data_keys=("nope",)))
    with pytest.raises(ConfigError, match="run 'ddserver init'"):
        sealing.load(_config(data_key_file=str(tmp_path / "missing")), required=True)
    with pytest.raises(sealing.SealingError, match="no data key"):
        sealing.load(_config(data_key_file=str(tmp_path / "missing"))).seal("x")
