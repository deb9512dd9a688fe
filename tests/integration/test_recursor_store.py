"""The recursor's bulk host read on both dialects: only hosts in DNS, every field, across pages (MariaDB reads a
page as one text; a text cut short is read again value by value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddserver.db import Database
from ddserver.store import recursor as store
from tests import support
from tests.integration.test_recursor import PARENT, ZONE, populate


def expected(data: dict) -> list[tuple]:
    zone_id, parent_id = data["zone"].id, data["www"].zone_id
    return sorted(
        [
            (f"home.{ZONE}", zone_id, "192.0.2.1", "2001:db8::1", None, False),
            (f"txt.{ZONE}", zone_id, "192.0.2.4", None, None, False),
            (f"v4.{ZONE}", zone_id, "192.0.2.2", None, None, False),
            (f"v6.{ZONE}", zone_id, None, "2001:db8::6", None, False),
            (f"wild.{ZONE}", zone_id, "192.0.2.3", None, 120, True),
            (f"www.{PARENT}", parent_id, "198.51.100.1", None, None, False),
        ]
    )  # blocked, abuse and the disabled user's host are out


def normalised(rows: list[tuple]) -> list[tuple]:
    return sorted((n, z, a, b, t, bool(w)) for n, z, a, b, t, w in rows)


@pytest.mark.parametrize("size", [2, 100])
def test_all_hosts_in_dns_across_pages(size: int, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    data = populate(db)
    monkeypatch.setattr(store, "TEXT_PAGE", size)
    assert normalised(list(store.iter_all_hosts(db, page=size))) == expected(data)


def test_text_page_cut_short_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = support.create_database(support.new_database_url("mysql", tmp_path))  # the page text is MariaDB's
    try:
        data = populate(db)
        real = store._host_text_page

        def cut(tx, after):  # type: ignore[no-untyped-def]
            count, high, text = real(tx, after)
            return count, high, text[: len(text) // 2] if text else text

        monkeypatch.setattr(store, "_host_text_page", cut)
        monkeypatch.setattr(store, "TEXT_PAGE", 4)
        assert normalised(list(store.iter_all_hosts(db))) == expected(data)
    finally:
        db.drop_database()
