"""User passwords: argon2id through passlib (the libpass distribution), legacy hashes re-hashed on login."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ddserver.errors import MissingDependency

# ddserver 0.2 stored SHA-512-crypt ("$6$") hashes; the other crypt schemes come from sites that
# imported users from elsewhere.
LEGACY_SCHEMES = ["sha512_crypt", "sha256_crypt", "bcrypt", "md5_crypt"]


@functools.lru_cache(maxsize=1)
def _context() -> Any:
    try:
        from passlib.context import CryptContext
    except ImportError:
        raise MissingDependency(
            "passwords need passlib: install ddserver with the 'admin', 'interface' or 'updater' extra"
        )
    return CryptContext(
        schemes=["argon2", *LEGACY_SCHEMES],
        deprecated=LEGACY_SCHEMES,
        argon2__type="ID",
    )


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    #: The password was right but is stored with an old scheme or old parameters: store this instead.
    new_hash: str | None = None


def hash_password(password: str) -> str:
    """Hash a user password with argon2id."""
    return str(_context().hash(password))


def verify_password(password: str, stored: str | None) -> PasswordCheck:
    """Check a password; a correct password under a legacy scheme comes back with its new hash."""
    if not stored or not password:
        # The time of a real check all the same: an empty password must not answer sooner.
        dummy_verify()
        return PasswordCheck(False)
    try:
        ok, new_hash = _context().verify_and_update(password, stored)
    except (ValueError, TypeError):
        return PasswordCheck(False)
    return PasswordCheck(bool(ok), new_hash)


def verify_legacy(password: str, stored: str) -> bool:
    """Check a password against any hash the context knows (used for imported host passwords)."""
    try:
        return bool(_context().verify(password, stored))
    except (ValueError, TypeError):
        return False


def dummy_verify() -> None:
    """Spend as long as a real check, so a missing user cannot be told from a wrong password by timing."""
    _context().dummy_verify()
