"""``ddserver run``: set up SQLite, a demo zone and an admin, then serve everything on one box."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import secrets as _random
import shlex
import shutil
import string
import sys
from pathlib import Path

from ddserver import sealing, validate
from ddserver.config import Config, parse_listen
from ddserver.db import Database
from ddserver.db import migrate as migrations
from ddserver.errors import MissingDependency, ValidationError
from ddserver.store import users, zones

logger = logging.getLogger(__name__)

DEMO_ZONE = "dyn.example.test"
#: The first line of the configuration the quick start writes; a file that starts so is rewritten on each start.
CONF_HEADER = "# Written by 'ddserver run' for its own files; see etc/ddserver/ddserver.conf for every key.\n"


def base_url(listen: str) -> str:
    """The URL the quick start serves on, from ``--listen HOST:PORT`` (as given when it is not valid: the
    error comes when serving)."""
    try:
        host, port = parse_listen(listen)
    except ValueError:
        return f"http://{listen}"
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}"


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a newcomer types it from the current folder: relative below it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return relative if not relative.startswith("..") else absolute


def command_name() -> str:
    """How to call this very ``ddserver`` from the current folder: ``.venv/bin/ddserver`` from a checkout
    whose virtual environment is not on PATH, ``ddserver`` when PATH finds this one."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) != "ddserver":
        return "ddserver"
    found = shutil.which("ddserver")
    if found and os.path.abspath(found) == os.path.abspath(script):
        return "ddserver"
    return shlex.quote(shown_path(script))


def prepare(config: Config, data_dir: Path) -> tuple[Database, str | None]:
    """Create the database, secret key, demo zone and admin if missing.

    :returns: the database, and the admin's new password when the admin was created now.
    """
    from ddserver.cli import ensure_secret_key

    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "ddserver.conf"
    ours = not conf.exists() or conf.read_text(encoding="utf-8", errors="replace").startswith(CONF_HEADER)
    if ours and config.source is None:
        # So that other commands reach the quick start's database (ddserver --config var/ddserver.conf ...)
        # and name the address it serves on in their setup help.
        conf.write_text(
            CONF_HEADER + f"[database]\nurl = {config.database.url}\n\n"
            f"[auth]\nsecret_key_file = {config.auth.secret_key_file}\n"
            f"data_key_file = {config.auth.data_key_file}\n\n"
            f"[http]\nbase_url = {config.http.base_url}\n",
            encoding="utf-8",
        )
    db = Database.from_config(config)
    migrations.migrate(db)
    ensure_secret_key(config)
    sealing.ensure_key_file(config)
    if not zones.list_all(db):
        zones.add(
            db,
            DEMO_ZONE,
            ["ns1.example.test"],
            validate.hostmaster("hostmaster@example.test"),
            description="Demo zone of the quick start",
        )
    password = None
    if users.count(db) == 0:
        try:
            from ddserver import passwords
        except MissingDependency:  # pragma: no cover - the quick start installs every extra
            raise
        password = "".join(_random.choice(string.ascii_letters + string.digits) for _ in range(16))
        users.add(db, "admin", "admin@example.test", password_hash=passwords.hash_password(password), is_admin=True)
        (data_dir / "admin-password.txt").write_text(password + "\n", encoding="utf-8")
        (data_dir / "admin-password.txt").chmod(0o600)
    return db, password


def run(config: Config, args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
    except ValueError:
        raise ValidationError(f"--listen {args.listen!r}: expected HOST:PORT")
    data_dir = Path(args.data_dir).resolve()
    db, password = prepare(config, data_dir)

    print(f"ddserver quick start: database {db.url.describe()}, demo zone {DEMO_ZONE}")
    if password:
        print(f"admin account: admin / {password}   (also in {data_dir / 'admin-password.txt'})")
    else:
        print(f"admin account: admin (password in {data_dir / 'admin-password.txt'} if the quick start made it)")

    web = importlib.util.find_spec("ddserver.bundle") is not None
    pdns = shutil.which("pdns_server") or Path("/usr/sbin/pdns_server").exists()
    base = base_url(args.listen)
    conf = data_dir / "ddserver.conf"
    prefix = command_name()
    if conf.exists() and config.source is None:
        prefix += f" --config {shlex.quote(shown_path(conf))}"
    print("next steps:")
    print(f"  {prefix} host add admin home.{DEMO_ZONE}     # prints the host's update secret")
    print(f"  curl -u home.{DEMO_ZONE}:SECRET '{base}/nic/update?myip=192.0.2.1'")
    print(f"  dig @127.0.0.1 -p {args.dns_port} home.{DEMO_ZONE} A")
    if args.no_serve:
        return 0
    if not web:
        print("the web interface and updater are not installed yet: nothing to serve")
        return 0
    from ddserver import bundle

    return int(
        bundle.serve_quickstart(config, host, port, dns_port=args.dns_port if pdns else None, data_dir=data_dir) or 0
    )
