"""Which [database] timeouts each program's database gets: the short read_timeout for the apps that answer
requests, job_read_timeout for commands, the recursor and the RFC 2136 worker."""

from __future__ import annotations

import pytest

from ddserver import bundle
from ddserver.config import load_config
from ddserver.db import Database
from ddserver.errors import ConfigError
from ddserver.interface.app import create_app as create_interface
from ddserver.recursor.daemon import make_follower
from ddserver.updater.app import create_app as create_updater

MYSQL = "mysql://root@127.0.0.1:3306/ddserver"


def test_defaults_fit_a_router_and_leave_jobs_their_minute() -> None:
    section = load_config(env={}).database
    assert (section.connect_timeout, section.read_timeout, section.job_read_timeout) == (3, 5, 60)


def test_serving_apps_wait_read_timeout_and_the_others_job_read_timeout() -> None:
    env = {
        "DDSERVER_DATABASE_CONNECT_TIMEOUT": "2",
        "DDSERVER_DATABASE_READ_TIMEOUT": "4",
        "DDSERVER_DATABASE_JOB_READ_TIMEOUT": "300",
    }
    config = load_config(env=env).replace("database", url=MYSQL).replace("auth", secret_key="k")
    serving = Database.from_config(config, serving=True)
    job = Database.from_config(config)
    assert (serving.connect_timeout, serving.read_timeout) == (2, 4)
    assert (job.connect_timeout, job.read_timeout) == (2, 300)
    # Connections of their own for the updater's group commit keep the timeouts.
    assert serving.with_multi_statements().read_timeout == 4

    # Nothing here connects: databases open their connections on first use.
    updater = create_updater(config)
    assert updater.config["ddserver.updater"].db.read_timeout == 4
    assert create_interface(config).config["ddserver.site"].db.read_timeout == 4
    assert bundle.create_bundle(config).interface.config["ddserver.site"].db.read_timeout == 4
    follower, _ = make_follower(config)
    assert follower.db.read_timeout == 300


def test_timeouts_are_checked() -> None:
    for key, bad in (("read_timeout", "0"), ("job_read_timeout", "-1"), ("connect_timeout", "soon")):
        with pytest.raises(ConfigError, match=f"\\[database\\] {key}"):
            load_config(env={f"DDSERVER_DATABASE_{key.upper()}": bad})
