"""Upgrading from ddserver 0.2: users, suffixes and hosts come over, and the old hashes keep working."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest
from passlib.hash import sha512_crypt

from ddserver import cli, passwords, secrets
from ddserver.db import Database
from ddserver.store import hosts, users, zones
from tests import support

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "ddserver-0.2.sql"


@pytest.fixture
def old_database(tmp_path):
    url = support.new_database_url("mysql", tmp_path)
    source = Database(url)
    source.create_database()
    u = source.url
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password, database=u.database)
    try:
        with conn.cursor() as cur:
            text = "\n".join(line for line in SCHEMA.read_text().splitlines() if not line.startswith("--"))
            for statement in text.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute("INSERT INTO suffixes (name) VALUES ('dyn.example.org'), ('Bad Suffix')")
            cur.executemany(
                "INSERT INTO users (username, password, email, admin, active, maxhosts) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    ("admin", sha512_crypt.hash("admin-password"), "admin@example.org", 1, 1, None),
                    ("bob", sha512_crypt.hash("bob-password"), "bob@example.org", 0, 1, 10),
                    ("bad user!", None, "x@example.org", 0, 0, None),
                ],
            )
            cur.executemany(
                "INSERT INTO hosts (user_id, suffix_id, hostname, address, description, password, wildcard) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (2, 1, "home", "192.0.2.7", "my router", sha512_crypt.hash("router-secret"), 1),
                    (2, 1, "office", None, None, sha512_crypt.hash("other"), 0),
                    (2, 1, "bad_label", None, None, sha512_crypt.hash("x"), 0),
                ],
            )
        conn.commit()
    finally:
        conn.close()
    yield url
    source.drop_database()


def test_import(old_database, db, db_url, tmp_path, capsys):
    conf = support.write_config_file(tmp_path / "c.conf", db_url)
    code = cli.main(
        [
            "--config",
            str(conf),
            "import-v02",
            old_database,
            "--ns",
            "ns1.example.org",
            "--hostmaster",
            "hostmaster@example.org",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "imported 1 zones, 2 users, 2 hosts" in out
    assert "skipped user bad user!" in out and "skipped host bad_label.dyn.example.org" in out
    zone = zones.get(db, "dyn.example.org")
    assert zone.nameservers == ("ns1.example.org",)
    admin = users.get_by_name(db, "admin")
    assert admin.is_admin and admin.can_log_in
    check = passwords.verify_password("admin-password", admin.password_hash)
    assert check.ok and check.new_hash.startswith("$argon2id$")  # re-hashed at the first login
    assert users.get_by_name(db, "bob").max_hosts == 10
    home = hosts.get(db, "home.dyn.example.org")
    assert home.ipv4 == "192.0.2.7" and home.wildcard and home.description == "my router"
    legacy = secrets.verify_host_secret("router-secret", home.secret_hash)
    assert legacy.ok and legacy.needs_rehash
    # Running it again imports nothing twice.
    assert (
        cli.main(
            [
                "--config",
                str(conf),
                "import-v02",
                old_database,
                "--ns",
                "ns1.example.org",
                "--hostmaster",
                "hostmaster@example.org",
            ]
        )
        == 0
    )
    assert "imported 0 zones, 0 users, 0 hosts" in capsys.readouterr().out
    assert hosts.search(db)[1] == 2


def test_not_a_ddserver_database(db, db_url, tmp_path, capsys):
    conf = support.write_config_file(tmp_path / "c.conf", db_url)
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    code = cli.main(
        ["--config", str(conf), "import-v02", other, "--ns", "ns1.example.org", "--hostmaster", "h@example.org"]
    )
    assert code == 1
    assert "is not a ddserver 0.2 database" in capsys.readouterr().err
