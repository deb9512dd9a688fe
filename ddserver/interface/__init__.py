"""The web interface (Bottle + Jinja2): sign-up, hosts, zones and administration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bottle

    from ddserver.config import Config
    from ddserver.db import Database


def create_app(config: Config, db: Database | None = None) -> bottle.Bottle:
    """Build the web interface (see ``ddserver.interface.app.create_app``)."""
    from ddserver.interface.app import create_app as build

    return build(config, db)
