"""Account queries of the web interface: the admins to notify, and the second factor's replay guard."""

from __future__ import annotations

from ddserver.db import Database, Transaction
from ddserver.store.users import _COLUMNS, User


def admins(db: Database) -> list[User]:
    """Every admin who is not disabled, by name (however many users there are)."""
    rows = db.read(
        lambda tx: tx.all(f"SELECT {_COLUMNS} FROM users WHERE is_admin = 1 AND is_disabled = 0 ORDER BY username")
    )
    return [User.from_row(row) for row in rows]


def use_totp_step(db: Database, user_id: int, step: int) -> bool:
    """Spend a TOTP time step: True only when it is later than every step the user spent before.

    One conditional UPDATE, so two requests presenting the same code at once cannot both pass.
    """

    def run(tx: Transaction) -> bool:
        tx.execute(
            "UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
            (step, user_id, step),
        )
        return tx.rowcount == 1

    return db.run(run)


def set_totp(db: Database, user_id: int, secret: str | None, step: int | None) -> None:
    """Turn the second factor on with ``secret`` (the setup code's ``step`` counts as spent) or off (None)."""
    db.run(
        lambda tx: tx.execute(
            "UPDATE users SET totp_secret = ?, totp_last_step = ? WHERE id = ?", (secret, step, user_id)
        )
    )
