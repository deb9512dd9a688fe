"""The updater and related names: the prefix parameters routers send, a prefix on its own, and the related
names following a main host's update in its answer's transaction (host cache off and on, each dialect)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddserver import prefixes
from ddserver.config import Config
from ddserver.db import Database
from ddserver.store import hosts, related
from ddserver.updater import protocol
from ddserver.updater.app import create_app
from tests.updater_support import ZONE, Site, call, make_site, updater_config

HOME = f"home.{ZONE}"
NAS = f"nas.{HOME}"
TV = f"tv.{ZONE}"
CLIENT = protocol.parse_address("192.0.2.10")


@pytest.mark.parametrize("name", protocol.PREFIX_PARAMETERS)
def test_each_prefix_parameter_is_read(name: str) -> None:
    target = protocol.parse_target({name: "2001:db8:1234:5600::/56"}, CLIENT)
    # A prefix alone sets no address, not even the client's.
    assert target == protocol.Target(ipv6_prefix="2001:db8:1234:5600::/56")


def test_a_fritzbox_url_with_addresses_and_lan_prefix() -> None:
    params = {"myip": "198.51.100.1,2001:db8:ff::1", "ip6lanprefix": "2001:db8:1234:5600::/56"}
    target = protocol.parse_target(params, CLIENT)
    assert (target.ipv4, target.ipv6, target.ipv6_prefix) == (
        "198.51.100.1",
        "2001:db8:ff::1",
        "2001:db8:1234:5600::/56",
    )
    # On an IPv4-only line the box leaves <ip6addr> and <ip6lanprefix> empty.
    target = protocol.parse_target({"myip": "198.51.100.1,", "ip6lanprefix": ""}, CLIENT)
    assert (target.ipv4, target.set_ipv6, target.ipv6_prefix) == ("198.51.100.1", False, None)


@pytest.mark.parametrize("value", ["192.0.2.0/24", "2001:db8::/200", "nonsense", "ff00::/8"])
def test_a_bad_prefix_is_a_bad_request(value: str) -> None:
    with pytest.raises(protocol.BadAddress):
        protocol.parse_target({"myipv6prefix": value}, CLIENT)


@given(text=st.text(max_size=60))
def test_any_prefix_text_is_a_target_or_a_bad_address(text: str) -> None:
    try:
        target = protocol.parse_target({"ip6lanprefix": text}, CLIENT)
    except protocol.BadAddress:
        return
    if target.ipv6_prefix is not None:
        assert prefixes.parse_prefix(target.ipv6_prefix).address in target.ipv6_prefix


def test_delete_ignores_a_prefix() -> None:
    target = protocol.parse_delete_target({"ipv6prefix": "2001:db8::/56", "myip": "2001:db8::1"}, CLIENT)
    assert target == protocol.Target(None, None, False, True)


def test_decide_counts_a_new_prefix_as_a_change() -> None:
    prefix = protocol.Target(ipv6_prefix="2001:db8:1::/56")
    assert protocol.decide(prefix, None, "2001:db8::1", None).changed
    assert not protocol.decide(prefix, None, "2001:db8::1", "2001:db8:1::/56").changed


@pytest.fixture
def site(db: Database) -> Site:
    made = make_site(db)
    related.add(db, made.home.id, NAS, "::1:2:3:4", limit=5)
    related.add(db, made.home.id, TV, "::5", prefix_len=56, follow_ipv4=True, limit=5)
    return made


@pytest.mark.parametrize("cache", [0, 100], ids=["cache-off", "cache-on"])
def test_updates_carry_the_related_names_along(config: Config, db: Database, site: Site, cache: int) -> None:
    app = create_app(updater_config(config, host_cache=cache), db)
    auth = (HOME, site.secrets[HOME])
    try:
        reply = call(app, "/nic/update", {"hostname": HOME, "myip": "198.51.100.1,2001:db8:1:2::1"}, auth=auth)
        assert reply.lines == ["good 198.51.100.1,2001:db8:1:2::1"]
        assert hosts.get(db, NAS).ipv6 == "2001:db8:1:2:1:2:3:4"
        assert (hosts.get(db, TV).ipv4, hosts.get(db, TV).ipv6) == ("198.51.100.1", "2001:db8:1::5")

        # FRITZ!Box: its own (WAN) address and the LAN prefix; the related names take the prefix.
        params = {"hostname": HOME, "myip": "198.51.100.1,2001:db8:1:2::1", "ip6lanprefix": "2001:db8:77:6600::/56"}
        assert call(app, "/nic/update", params, auth=auth).lines == ["good 198.51.100.1,2001:db8:1:2::1"]
        assert hosts.get(db, NAS).ipv6 == "2001:db8:77:6600:1:2:3:4"
        assert call(app, "/nic/update", params, auth=auth).lines == ["nochg 198.51.100.1,2001:db8:1:2::1"]

        # A prefix on its own, from another address: the main host's addresses stay.
        params = {"hostname": HOME, "myipv6prefix": "2001:db8:88::/48"}
        reply = call(app, "/nic/update", params, auth=auth, remote="203.0.113.9")
        assert reply.lines == ["good 198.51.100.1,2001:db8:1:2::1"]
        assert hosts.get(db, NAS).ipv6 == "2001:db8:88:0:1:2:3:4"
        assert hosts.get(db, TV).ipv6 == "2001:db8:88::5"
        assert hosts.get(db, HOME).ipv6_prefix == "2001:db8:88::/48"

        # offline=YES clears the host, its prefix and so its related names' addresses.
        assert call(app, "/nic/update", {"hostname": HOME, "offline": "YES"}, auth=auth).lines == ["good"]
        assert hosts.get(db, HOME).ipv6_prefix is None
        assert (hosts.get(db, TV).ipv4, hosts.get(db, TV).ipv6, hosts.get(db, NAS).ipv6) == (None, None, None)
        # A prefix alone on a host without addresses, then /nic/delete of IPv6: the prefix goes too.
        reply = call(app, "/nic/update", {"hostname": HOME, "ipv6prefix": "2001:db8:99::/48"}, auth=auth)
        assert reply.lines == ["good"]
        assert hosts.get(db, NAS).ipv6 == "2001:db8:99:0:1:2:3:4"
        assert call(app, "/nic/delete", {"hostname": HOME, "family": "6"}, auth=auth).lines == ["good"]
        assert hosts.get(db, NAS).ipv6 is None

        # A bad prefix is a bad request, as a bad address is.
        assert call(app, "/nic/update", {"hostname": HOME, "ipv6prefix": "x"}, auth=auth).lines == ["badagent"]
    finally:
        app.config["ddserver.updater"].close()


def test_a_related_name_is_not_updated_on_its_own(config: Config, db: Database, site: Site) -> None:
    app = create_app(updater_config(config), db)
    try:
        # Not with the main host's secret, nor with the account token, nor as a login of its own.
        auth = (HOME, site.secrets[HOME])
        assert call(app, "/nic/update", {"hostname": NAS, "myip": "2001:db8::9"}, auth=auth).lines == ["nohost"]
        token_auth = (site.alice.username, site.token)
        assert call(app, "/nic/update", {"hostname": NAS, "myip": "2001:db8::9"}, auth=token_auth).lines == ["nohost"]
        assert call(app, "/nic/update", {"myip": "2001:db8::9"}, auth=(NAS, "-")).lines == ["badauth"]
        assert hosts.get(db, NAS).ipv6 is None
    finally:
        app.config["ddserver.updater"].close()
