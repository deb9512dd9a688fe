"""Secrets kept encrypted at rest (DNSSEC private keys, TSIG secrets, relay passwords).

AES-256-GCM under a data key from the configuration; old keys stay readable after a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ddserver.config import Config
from ddserver.errors import ConfigError, DDServerError

PREFIX = "sealed1"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealingError(DDServerError):
    """A sealed secret cannot be opened with the configured data keys."""


def new_key() -> str:
    """A new data key as the configuration holds it (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(text: str) -> bytes | None:
    """The 32 key bytes of a base64 data key; None when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(text.strip())
        except (binascii.Error, ValueError):
            return None
    return raw if len(raw) == KEY_BYTES else None


def key_id(key: bytes) -> str:
    """A short public name of a key, stored with each sealed value so the right key opens it."""
    return hashlib.sha256(b"ddserver data key\0" + key).hexdigest()[:8]


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX + ":")


@dataclass(frozen=True)
class Sealer:
    """Seals with the current key; opens with the current or any old key."""

    current: bytes | None
    old: tuple[bytes, ...] = ()

    @property
    def available(self) -> bool:
        return self.current is not None

    def seal(self, plaintext: str, context: str = "") -> str:
        """Encrypt ``plaintext``; ``context`` (say ``dnssec:example.org``) must be given again to open it.

        :raises SealingError: when no data key is configured.
        """
        if self.current is None:
            raise SealingError("no data key configured ([auth] data_key or data_key_file)")
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        blob = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{PREFIX}:{key_id(self.current)}:{blob}"

    def unseal(self, value: str, context: str = "") -> str:
        """The plaintext of a value made by :meth:`seal` with the same ``context``.

        :raises SealingError: when the value is malformed, its key is not configured, or it was altered.
        """
        parts = value.split(":")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise SealingError("not a sealed value")
        keys = [k for k in ((self.current,) if self.current else ()) + self.old if key_id(k) == parts[1]]
        if not keys:
            raise SealingError(f"sealed with data key {parts[1]}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except (binascii.Error, ValueError):
            raise SealingError("not a sealed value") from None
        if len(raw) <= NONCE_BYTES:
            raise SealingError("not a sealed value")
        try:
            plain = AESGCM(keys[0]).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag:
            raise SealingError(f"sealed value does not open with data key {parts[1]} (altered or moved)") from None
        return plain.decode("utf-8")

    def reseal(self, value: str, context: str = "") -> str:
        """The value sealed again with the current key (for a key rotation)."""
        return self.seal(self.unseal(value, context), context)


def load(config: Config, *, required: bool = False) -> Sealer:
    """The sealer from ``[auth] data_key`` (or the file named by ``data_key_file``) and ``old_data_keys``.

    :param required: raise when no key is configured instead of returning a sealer that cannot seal.
    :raises ConfigError: naming the key when a value is not a data key, or when required and missing.
    """
    auth = config.auth
    text = auth.data_key
    where = "[auth] data_key"
    if not text:
        path = Path(auth.data_key_file)
        where = f"[auth] data_key_file = {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ConfigError(f"config: {where}: cannot be read ({exc.strerror})")
    current = None
    if text:
        current = parse_key(text)
        if current is None:
            raise ConfigError(f"config: {where}: expected 32 bytes in base64 (ddserver init writes one)")
    elif required:
        raise ConfigError("config: [auth] data_key: not set and data_key_file missing; run 'ddserver init'")
    old = []
    for item in auth.old_data_keys:
        key = parse_key(item)
        if key is None:
            raise ConfigError("config: [auth] old_data_keys: expected data keys in base64, comma-separated")
        old.append(key)
    return Sealer(current, tuple(old))


def ensure_key_file(config: Config) -> bool:
    """Write a new data key file if the configuration names one that is missing.

    :returns: True if a key was written.
    """
    if config.auth.data_key:
        return False
    return write_key_file(Path(config.auth.data_key_file), new_key(), "[auth] data_key_file")


def write_key_file(path: Path, key: str, setting: str) -> bool:
    """Write ``key`` to a new file only its owner may read, unless the file exists (never replaced).

    :param setting: the configuration key that names the file, for the error.
    :returns: True if the file was written.
    :raises ConfigError: naming ``setting`` when the file cannot be written.
    """
    if path.exists():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise ConfigError(f"config: {setting} = {str(path)!r}: cannot be written ({exc.strerror})")
    return True


__all__ = ["Sealer", "SealingError", "ensure_key_file", "is_sealed", "load", "new_key", "parse_key"]
