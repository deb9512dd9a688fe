"""Host secrets and tokens: made by the server, stored only as hashes, checked in microseconds.

User passwords are elsewhere (``ddserver.passwords``), because they need a slow hash and passlib.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
import string
import time
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
# 22 characters from 62 give 130 bits. Letters and digits only, because router forms and URL-building
# scripts mangle punctuation.
SECRET_LENGTH = 22


#: Bytes of a new TSIG secret per algorithm: its digest's size, as tsig-keygen makes them.
TSIG_SECRET_BYTES = {"hmac-md5": 16, "hmac-sha1": 20, "hmac-sha224": 28, "hmac-sha256": 32, "hmac-sha384": 48,
                     "hmac-sha512": 64}  # fmt: skip


def new_tsig_secret(algorithm: str) -> str:
    """A new random TSIG secret for ``algorithm``, in base64 (as tsig-keygen prints it)."""
    import base64

    return base64.b64encode(_random.token_bytes(TSIG_SECRET_BYTES[algorithm])).decode("ascii")


def new_host_secret() -> str:
    """A fresh host secret of at least 128 bits."""
    return "".join(_random.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


#: The prefix of the schemes of secrets that people chose (imported ddserver 0.2 passwords once re-hashed):
#: as fast to check as a server-made secret, but guessable, so the updater limits how often it checks them.
WEAK = "weak-"


def hash_host_secret(secret: str, pepper: str = "", *, weak: bool = False) -> str:
    """The stored form of a host secret: ``hmac-sha256$<hex>`` with a pepper, else ``sha256$<hex>``; with
    ``weak`` (a secret the server did not make) the scheme is prefixed with ``weak-``.

    A slow hash is not needed: the secret has 128 bits or more of entropy, made by the server.
    """
    data = secret.encode("utf-8")
    prefix = WEAK if weak else ""
    if pepper:
        return prefix + "hmac-sha256$" + hmac.new(pepper.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return prefix + "sha256$" + hashlib.sha256(data).hexdigest()


def is_weak_hash(stored: str) -> bool:
    """Whether a stored host secret is one a person chose (a ddserver 0.2 password, re-hashed or not), which
    can be guessed, rather than one the server made."""
    return stored.startswith(("$", WEAK))


@dataclass(frozen=True)
class SecretCheck:
    """The result of checking a presented secret against a stored hash."""

    ok: bool
    #: The stored hash is of a legacy scheme: store ``hash_host_secret(secret, weak=True)`` instead.
    needs_rehash: bool = False


def verify_host_secret(secret: str, stored: str, pepper: str = "") -> SecretCheck:
    """Check a presented secret; legacy (imported ddserver 0.2) hashes are checked with passlib.

    Unknown or empty stored values never match.
    """
    if not secret or not stored:
        return SecretCheck(False)
    scheme, sep, _ = stored.partition("$")
    weak = scheme.startswith(WEAK)
    scheme = scheme.removeprefix(WEAK)
    if sep and scheme in ("sha256", "hmac-sha256"):
        if scheme == "hmac-sha256" and not pepper:
            return SecretCheck(False)
        candidate = hash_host_secret(secret, pepper if scheme == "hmac-sha256" else "", weak=weak)
        return SecretCheck(hmac.compare_digest(candidate, stored))
    if stored.startswith("$"):
        from ddserver import passwords  # legacy only: the fast path needs no passlib

        ok = passwords.verify_legacy(secret, stored)
        return SecretCheck(ok, needs_rehash=ok)
    return SecretCheck(False)


def token_hash(token: str) -> str:
    """The stored form of an activation, reset or API token (they are random: SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token and its hash: give the first to the person, store the second."""
    token = _random.token_urlsafe(24)
    return token, token_hash(token)


#: Length of update and API tokens: 32 characters from 62 give 190 bits.
UPDATE_TOKEN_LENGTH = 32


def new_update_token() -> tuple[str, str]:
    """A fresh update or API token and its hash. Letters and digits only, like host secrets: routers put it
    into forms and URLs."""
    token = "".join(_random.choice(_ALPHABET) for _ in range(UPDATE_TOKEN_LENGTH))
    return token, token_hash(token)


def expiry(lifetime: int, now: float | None = None) -> int:
    """The epoch second at which something made now with this lifetime expires."""
    return int((time.time() if now is None else now) + lifetime)


def mask(secret: str | None) -> str:
    """Show a secret in listings without giving it away."""
    if not secret:
        return ""
    return secret[:2] + "…" if len(secret) > 8 else "…"
