"""End to end: a real updater server (its host cache at the default) with scoped tokens: the hosts and scopes
a token covers, the ACME hook with a TXT-only token, and a revoked token refused at its next request."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from ddserver.db import Database
from ddserver.store import hosts, records, tokens
from tests.updater_support import ZONE, basic, make_site, running_updater

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"


def get(url: str, login: str, secret: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": basic(login, secret)})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_scoped_tokens_through_a_real_updater(db: Database, db_url: str, tmp_path: Path) -> None:
    site = make_site(db)
    router, router_id = tokens.create_grant(db, site.alice.id, "router", [tokens.Scope.UPDATE],
                                            host_ids=[site.home.id])  # fmt: skip
    acme, _ = tokens.create_grant(db, site.alice.id, "acme", [tokens.Scope.TXT])
    with running_updater(tmp_path, db_url) as (port, _config):
        base = f"http://127.0.0.1:{port}"
        # Host logins fill the updater's host cache; the tokens are answered all the same.
        assert get(f"{base}/nic/update?myip=192.0.2.1", HOME, site.secrets[HOME]) == (200, "good 192.0.2.1\n")
        url = f"{base}/nic/update?hostname={HOME},{OFFICE}&myip=198.51.100.70"
        assert get(url, "alice", router) == (200, "good 198.51.100.70\nnohost\n")
        assert hosts.get(db, HOME).ipv4 == "198.51.100.70" and hosts.get(db, OFFICE).ipv4 is None
        assert get(url, "alice", acme) == (200, "nohost\nnohost\n")
        hook = f"{base}/nic/acme?hostname=_acme-challenge.{OFFICE}&txt=challenge-token"
        assert get(hook, "alice", acme) == (200, "good\n")
        assert [r.content for r in records.for_host(db, site.office.id)] == ["challenge-token"]
        assert get(hook, "alice", router) == (200, "nohost\n")
        assert [i.last_used_at is not None for i in tokens.list_grants(db, site.alice.id)][-2:] == [True, True]
        tokens.revoke(db, site.alice.id, router_id)
        assert get(url, "alice", router) == (401, "badauth\nbadauth\n")
        assert get(f"{base}/nic/update?myip=192.0.2.2", HOME, site.secrets[HOME]) == (200, "good 192.0.2.2\n")
