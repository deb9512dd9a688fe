"""Small helpers shared by the store modules."""

from __future__ import annotations

import enum
import time
from typing import Any

from ddserver.db import Transaction


class Keep(enum.Enum):
    """Marks a keyword argument that leaves the stored value as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


def now() -> int:
    return int(time.time())


def for_update(tx: Transaction) -> str:
    """Row lock clause: MySQL needs it; SQLite's BEGIN IMMEDIATE already holds the only write lock."""
    return " FOR UPDATE" if tx.dialect == "mysql" else ""


def boolean(value: Any) -> bool:
    return bool(value) if value is not None else False


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its wildcards escaped (ESCAPE '!')."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"
