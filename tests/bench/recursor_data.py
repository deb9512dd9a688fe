"""Bulk test data for the recursor benchmarks: N hosts in ddserver's schema and the same zone for PowerDNS's
gmysql backend. Seeding SQL for benchmarks only (the application's SQL lives in ddserver/store)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from ddserver import validate
from ddserver.db import Database
from ddserver.store import users, zones

ZONE = "dyn.example.org"
GMYSQL_SCHEMA = Path("/usr/share/pdns-backend-mysql/schema/schema.mysql.sql")


def host_name(i: int) -> str:
    return f"h{i}.{ZONE}"


def address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def seed_ddserver(db: Database, count: int, batch: int = 20000) -> int:
    """A zone, a user and ``count`` IPv4 hosts (1 in 10 with IPv6 too); returns the zone id."""
    zone = zones.add(db, ZONE, ["ns1.example.org", "ns2.example.org"], validate.hostmaster("hostmaster@example.org"))
    user = users.add(db, "bench", "bench@example.org", password_hash="x")
    now = int(time.time())
    sql = "INSERT INTO hosts (name, zone_id, user_id, ipv4, ipv6, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    for start in range(0, count, batch):
        rows = [
            (
                host_name(i),
                zone.id,
                user.id,
                address(i),
                f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}" if i % 10 == 0 else None,
                "x",
                now,
            )
            for i in range(start, min(count, start + batch))
        ]
        db.run(lambda tx, rows=rows: tx.executemany(sql, rows))
    return zone.id


def seed_gmysql(db: Database, count: int, batch: int = 20000) -> None:
    """PowerDNS's own schema with the same zone: SOA, NS and the same A/AAAA records."""
    statements = [s.strip() for s in GMYSQL_SCHEMA.read_text().split(";") if s.strip()]

    def schema(tx) -> None:  # type: ignore[no-untyped-def]
        for statement in statements:
            tx.execute(statement)

    db.run(schema)
    domain_id = db.run(lambda tx: tx.insert("INSERT INTO domains (name, type) VALUES (?, 'NATIVE')", (ZONE,)))
    sql = "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) VALUES (?, ?, ?, ?, ?, 0, 0, 1)"
    apex = [
        (domain_id, ZONE, "SOA", "ns1.example.org hostmaster.example.org 1 3600 600 604800 60", 3600),
        (domain_id, ZONE, "NS", "ns1.example.org", 3600),
        (domain_id, ZONE, "NS", "ns2.example.org", 3600),
    ]
    db.run(lambda tx: tx.executemany(sql, apex))
    for start in range(0, count, batch):
        rows = []
        for i in range(start, min(count, start + batch)):
            rows.append((domain_id, host_name(i), "A", address(i), 60))
            if i % 10 == 0:
                rows.append((domain_id, host_name(i), "AAAA", f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}", 60))
        db.run(lambda tx, rows=rows: tx.executemany(sql, rows))


def query_file(path: Path, count: int, lines: int = 200000, missing: float = 0.05, seed: int = 1) -> Path:
    """dnsperf input: random existing names (A, some AAAA) and a few missing ones (NXDOMAIN)."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        if rng.random() < missing:
            out.append(f"nope{rng.randrange(10**9)}.{ZONE} A")
        else:
            i = rng.randrange(count)
            out.append(f"{host_name(i)} {'AAAA' if i % 10 == 0 and rng.random() < 0.5 else 'A'}")
    path.write_text("\n".join(out) + "\n")
    return path
