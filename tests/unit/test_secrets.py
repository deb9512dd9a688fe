"""Host secrets, tokens and user passwords."""

from __future__ import annotations

import math

from ddserver import passwords, secrets


def test_host_secrets_are_strong_and_hashed():
    secret = secrets.new_host_secret()
    assert len(secret) * math.log2(62) >= 128 and secret.isalnum()
    assert secret != secrets.new_host_secret()
    plain = secrets.hash_host_secret(secret)
    peppered = secrets.hash_host_secret(secret, "pepper")
    assert plain.startswith("sha256$") and peppered.startswith("hmac-sha256$") and secret not in plain
    assert secrets.verify_host_secret(secret, plain).ok
    assert secrets.verify_host_secret(secret, peppered, "pepper").ok
    assert not secrets.verify_host_secret(secret, peppered, "other").ok
    assert not secrets.verify_host_secret(secret, peppered).ok
    assert not secrets.verify_host_secret("wrong", plain).ok
    assert not secrets.verify_host_secret("", plain).ok
    assert not secrets.verify_host_secret(secret, "garbage").ok


def test_legacy_host_password_is_checked_and_flagged_for_rehash():
    from passlib.hash import sha512_crypt

    legacy = sha512_crypt.using(rounds=5000).hash("old-router-password")
    check = secrets.verify_host_secret("old-router-password", legacy)
    assert check.ok and check.needs_rehash
    assert not secrets.verify_host_secret("nope", legacy).ok


def test_tokens():
    token, hashed = secrets.new_token()
    assert secrets.token_hash(token) == hashed and token not in hashed and len(token) >= 32


def test_passwords_argon2id_and_legacy_rehash():
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password("correct horse battery", stored).ok
    assert passwords.verify_password("correct horse battery", stored).new_hash is None
    assert not passwords.verify_password("wrong", stored).ok
    assert not passwords.verify_password("x", None).ok
    assert not passwords.verify_password("x", "not-a-hash").ok
    # ddserver 0.2 stored SHA-512-crypt: accepted once, then replaced by argon2id.
    from passlib.hash import sha512_crypt

    legacy = sha512_crypt.hash("admin")
    check = passwords.verify_password("admin", legacy)
    assert check.ok and check.new_hash and check.new_hash.startswith("$argon2id$")
