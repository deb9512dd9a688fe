"""The pure dyndns2 core: credentials, hostnames, addresses, client address, answers and policy."""

from __future__ import annotations

import ipaddress

import pytest

from ddserver.updater import protocol
from ddserver.updater.protocol import Answer, Code, Credentials, Outcome, Target
from tests.updater_support import basic

V4 = ipaddress.ip_address("192.0.2.10")
V6 = ipaddress.ip_address("2001:db8::10")
TRUSTED = protocol.parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


def test_basic_auth_and_query_credentials() -> None:
    assert protocol.parse_basic(basic("Home.Dyn.Example.org", "s:e:cret")) == Credentials(
        "home.dyn.example.org", "s:e:cret"
    )
    assert protocol.parse_basic("Basic !!!") is None
    assert protocol.parse_basic("Bearer abc") is None
    assert protocol.parse_basic(basic("alice", "")) is None
    assert protocol.credentials(None, {"username": "alice", "password": "pw"}) == Credentials("alice", "pw")
    assert protocol.credentials(None, {"user": "alice", "pass": "pw"}) == Credentials("alice", "pw")
    assert protocol.credentials(None, {"user": "alice"}) is None
    # The header wins over the query.
    assert protocol.credentials(basic("bob", "x"), {"user": "alice", "pass": "pw"}) == Credentials("bob", "x")


def test_hostnames() -> None:
    names = protocol.parse_hostnames("Home.Dyn.Example.org., ,bad..name,nodots,xn--bcher-kva.dyn.example.org")
    assert [h.name for h in names] == ["home.dyn.example.org", None, None, "xn--bcher-kva.dyn.example.org"]
    assert protocol.parse_hostnames("") == ()
    assert protocol.parse_hostname("bücher.dyn.example.org").name == "xn--bcher-kva.dyn.example.org"
    assert protocol.strip_acme_label("_acme-challenge.home.dyn.example.org") == "home.dyn.example.org"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, Target("192.0.2.10", None, True, False)),
        ({"myip": ""}, Target("192.0.2.10", None, True, False)),
        ({"myip": "198.51.100.1"}, Target("198.51.100.1", None, True, False)),
        ({"myip": "2001:DB8::1"}, Target(None, "2001:db8::1", False, True)),
        ({"myip": "198.51.100.1,2001:db8::1"}, Target("198.51.100.1", "2001:db8::1", True, True)),
        ({"myip": "198.51.100.1,"}, Target("198.51.100.1", None, True, False)),  # Fritz!Box, no IPv6
        ({"myip": ",2001:db8::1"}, Target(None, "2001:db8::1", False, True)),
        ({"myipv6": "2001:db8::1"}, Target(None, "2001:db8::1", False, True)),
        ({"myipv4": "198.51.100.1", "myipv6": "2001:db8::1"}, Target("198.51.100.1", "2001:db8::1", True, True)),
        ({"myip": "::ffff:198.51.100.7"}, Target("198.51.100.7", None, True, False)),
        ({"offline": "YES", "myip": "198.51.100.1"}, Target(None, None, True, True)),
        # The unspecified address means none of that family: skipped, as an empty item is.
        ({"myip": "198.51.100.1,::"}, Target("198.51.100.1", None, True, False)),
        ({"myipv4": "0.0.0.0", "myipv6": "2001:db8::1"}, Target(None, "2001:db8::1", False, True)),
        ({"myip": "0.0.0.0"}, Target("192.0.2.10", None, True, False)),  # nothing left: the client's address
        # Private, loopback and link-local addresses are published on purpose.
        ({"myip": "10.1.2.3,fe80::1"}, Target("10.1.2.3", "fe80::1", True, True)),
        ({"myip": "127.0.0.1"}, Target("127.0.0.1", None, True, False)),
        (
            {"myip": "198.51.100.1", "wildcard": "ON", "mx": "mx.example.org", "backmx": "NO", "system": "dyndns"},
            Target("198.51.100.1", None, True, False),
        ),
    ],
)
def test_target(params: dict[str, str], expected: Target) -> None:
    assert protocol.parse_target(params, V4) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"myip": "300.1.2.3"},
        {"myip": "198.51.100.1,198.51.100.2"},
        {"myip": "fe80::1%eth0"},
        {"myipv4": "2001:db8::1"},
        {"myipv6": "198.51.100.1"},
        {"myip": "<ipaddr>"},
        {"myip": "224.0.0.1"},
        {"myipv6": "ff02::1"},
        {"myip": "255.255.255.255"},
        {"myip": "198.51.100.1,240.0.0.1"},
    ],
)
def test_bad_addresses(params: dict[str, str]) -> None:
    with pytest.raises(protocol.BadAddress):
        protocol.parse_target(params, V4)


def test_client_family_only_and_delete_target() -> None:
    assert protocol.parse_target({}, V6) == Target(None, "2001:db8::10", False, True)
    assert protocol.parse_delete_target({}, V6) == Target(None, None, False, True)
    assert protocol.parse_delete_target({"family": "all"}, V6) == Target(None, None, True, True)
    assert protocol.parse_delete_target({"family": "4"}, V6) == Target(None, None, True, False)
    assert protocol.parse_delete_target({"myip": "192.0.2.1"}, V6) == Target(None, None, True, False)
    with pytest.raises(protocol.BadAddress):
        protocol.parse_delete_target({"family": "7"}, V6)


def test_decide_keeps_the_other_family() -> None:
    assert protocol.decide(Target("192.0.2.1", None, True, False), "192.0.2.1", "2001:db8::1") == Outcome(
        "192.0.2.1", "2001:db8::1", False
    )
    assert protocol.decide(Target(None, "2001:db8::2", False, True), "192.0.2.1", "2001:db8::1") == Outcome(
        "192.0.2.1", "2001:db8::2", True
    )
    assert protocol.decide(Target(None, None, True, True), "192.0.2.1", None) == Outcome(None, None, True)


def test_answers_and_render() -> None:
    assert Outcome("192.0.2.1", "2001:db8::1", True).answer().line() == "good 192.0.2.1,2001:db8::1"
    assert Outcome(None, "2001:db8::1", False).answer().line() == "nochg 2001:db8::1"
    assert Answer(Code.SERVER_ERROR).line() == "911"
    assert protocol.render([Answer(Code.GOOD, ("192.0.2.1",)), Answer(Code.NOHOST)]) == (
        200,
        "good 192.0.2.1\nnohost\n",
    )
    assert protocol.render([Answer(Code.BADAUTH)]) == (401, "badauth\n")
    assert {code.http_status for code in Code if code is not Code.BADAUTH} == {200}


def test_client_address_trusts_only_configured_proxies() -> None:
    # A direct client cannot choose its address with headers.
    assert protocol.client_address("192.0.2.10", "203.0.113.5", "203.0.113.6", TRUSTED) == V4
    # From a trusted proxy: the rightmost untrusted hop.
    assert str(protocol.client_address("127.0.0.1", "203.0.113.5, 10.1.1.1", None, TRUSTED)) == "203.0.113.5"
    assert str(protocol.client_address("127.0.0.1", "6.6.6.6, 203.0.113.5, 10.1.1.1", None, TRUSTED)) == "203.0.113.5"
    assert str(protocol.client_address("127.0.0.1", None, "203.0.113.6", TRUSTED)) == "203.0.113.6"
    assert str(protocol.client_address("::ffff:127.0.0.1", None, "203.0.113.6", TRUSTED)) == "203.0.113.6"
    assert str(protocol.client_address("::ffff:192.0.2.9", None, None, TRUSTED)) == "192.0.2.9"
    assert str(protocol.client_address("127.0.0.1", "garbage, 203.0.113.5", None, TRUSTED)) == "203.0.113.5"
    assert str(protocol.client_address("127.0.0.1", "203.0.113.5, garbage", None, TRUSTED)) == "127.0.0.1"
    assert protocol.forwarded_tls(True, "http", "https")
    assert not protocol.forwarded_tls(False, "http", "https")
    assert protocol.forwarded_tls(False, "https", None)


def test_policy() -> None:
    assert protocol.is_blocked("x.bad.example.org", ["*.bad.example.org"])
    assert not protocol.is_blocked("bad.example.org", ["*.bad.example.org"])
    assert protocol.is_blocked("home.dyn.example.org", ["Home.dyn.example.org."])
    assert protocol.agent_blocked("EvilBot/1.0", ["evilbot"])
    assert not protocol.agent_blocked(None, ["evilbot"])
    changed, same = Outcome("192.0.2.1", None, True), Outcome("192.0.2.1", None, False)
    assert protocol.fault_of(changed, 1000, 990, 990, 60, 60) is protocol.Fault.TOO_SOON
    assert protocol.fault_of(changed, 1000, 900, 900, 60, 60) is None
    assert protocol.fault_of(same, 1000, 990, 500, 60, 60) is protocol.Fault.NOCHG_FLOOD
    assert protocol.fault_of(same, 1000, 990, 500, 60, 0) is None
    assert protocol.valid_txt("a" * 43) and not protocol.valid_txt("") and not protocol.valid_txt('a"b')


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ON", True),
        ("on", True),
        ("YES", True),
        ("OFF", False),
        ("no", False),
        ("NOCHG", None),
        ("", None),
        ("x", None),
    ],
)
def test_wildcard_parameter(value: str, expected: bool | None) -> None:
    assert protocol.parse_wildcard({"wildcard": value}) is expected
    assert protocol.parse_wildcard({}) is None
