"""Validation of names, addresses and e-mail: what passes, and what a refusal says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddserver import validate
from ddserver.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Home.Dyn.Example.org.", "home.dyn.example.org"),
        ("bücher.dyn.example.org", "xn--bcher-kva.dyn.example.org"),
        ("a-b.dyn.example.org", "a-b.dyn.example.org"),
        ("x" * 63 + ".example.org", "x" * 63 + ".example.org"),
        ("xn--bcher-kva.example.org", "xn--bcher-kva.example.org"),
    ],
)
def test_hostname_accepts(text, expected):
    assert validate.hostname(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a..example.org", "empty label"),
        ("-a.example.org", "begin or end with a hyphen"),
        ("a-.example.org", "begin or end with a hyphen"),
        ("a_b.example.org", "only letters, digits and hyphens"),
        ("a b.example.org", "only letters, digits and hyphens"),
        ("x" * 64 + ".example.org", "longer than 63"),
        (".".join(["abcdefghi"] * 26), "longer than 253"),
        ("ab--cd.example.org", "third and fourth"),
        ("www.example.org", "reserved"),
    ],
)
def test_hostname_refuses_with_reason(text, message):
    with pytest.raises(ValidationError) as info:
        validate.hostname(text, reserved=("www",))
    assert message in info.value.message


def test_label_and_zone_name():
    assert validate.label("Home") == "home"
    with pytest.raises(ValidationError, match="contains a dot"):
        validate.label("a.b")
    with pytest.raises(ValidationError, match="at least two labels"):
        validate.zone_name("org")
    assert validate.to_unicode("xn--bcher-kva.example.org") == "bücher.example.org"


def test_addresses():
    assert validate.ipv4(" 192.0.2.1 ") == "192.0.2.1"
    assert validate.ipv6("2001:DB8:0:0::1") == "2001:db8::1"
    assert str(validate.ip_address("::ffff:192.0.2.7")) == "192.0.2.7"  # IPv4-mapped becomes IPv4
    assert validate.ip_address("2001:db8::5").version == 6
    for bad in ("256.1.1.1", "1.2.3", "fe80::1%eth0", "abc", "", "1.2.3.4/24"):
        with pytest.raises(ValidationError):
            validate.ip_address(bad)
    with pytest.raises(ValidationError, match="scope"):
        validate.ipv6("fe80::1%eth0")
    with pytest.raises(ValidationError, match="not a valid IPv4"):
        validate.ipv4("2001:db8::1")


def test_addresses_no_host_can_have():
    for text, what in (("0.0.0.0", "unspecified"), ("224.0.0.251", "multicast"), ("255.255.255.255", "reserved"),
                       ("240.0.0.1", "reserved")):  # fmt: skip
        with pytest.raises(ValidationError, match=what):
            validate.ipv4(text)
    for text, what in (("::", "unspecified"), ("ff02::1", "multicast")):
        with pytest.raises(ValidationError, match=what):
            validate.ipv6(text)
    # What people publish on purpose stays allowed.
    assert validate.ipv4("127.0.0.1") == "127.0.0.1"
    assert validate.ipv4("192.168.1.2") == "192.168.1.2"
    assert validate.ipv6("fe80::1") == "fe80::1"
    assert validate.ipv6("::1") == "::1"


def test_email_and_username_and_hostmaster():
    assert validate.email("Alice@Bücher.Example") == "alice@xn--bcher-kva.example"
    for bad in ("alice", "alice@", "@x.org", "a@@x.org", "a b@x.org", "a@localhost", ".a@x.org"):
        with pytest.raises(ValidationError):
            validate.email(bad)
    assert validate.username("Alice_1") == "alice_1"
    with pytest.raises(ValidationError, match="not a valid user name"):
        validate.username("-alice")
    assert validate.hostmaster("hostmaster@example.org") == "hostmaster.example.org"
    assert validate.hostmaster("john.doe@example.org") == "john\\.doe.example.org"
    assert validate.rname_to_email("john\\.doe.example.org") == "john.doe@example.org"


@given(st.text(max_size=300))
def test_hostname_never_raises_anything_else(text):
    try:
        result = validate.hostname(text)
    except ValidationError:
        return
    assert result == result.lower() and len(result) <= 253 and result.isascii()


@given(st.text(max_size=60))
def test_ip_address_never_raises_anything_else(text):
    try:
        validate.ip_address(text)
    except ValidationError:
        pass


def test_txt_values_and_record_names():
    host = "home.dyn.example.org"
    assert validate.txt_value("gfj9Xq-Rg85nM_") == "gfj9Xq-Rg85nM_"
    for bad in ("", "a b", 'q"', "back\\slash", "é", "x" * 256):
        with pytest.raises(ValidationError):
            validate.txt_value(bad)
    assert validate.record_name("", host) == validate.record_name("@", host) == host
    assert validate.record_name("_acme-challenge", host) == f"_acme-challenge.{host}"
    assert validate.record_name(f"_ACME-challenge.{host}.", host) == f"_acme-challenge.{host}"
    for bad in ("a b", "-x", "x..y", "ü", "_", "a" * 64):
        with pytest.raises(ValidationError):
            validate.record_name(bad, host)


@given(st.text(max_size=300))
def test_record_name_never_raises_anything_else(text):
    try:
        result = validate.record_name(text, "home.dyn.example.org")
    except ValidationError:
        return
    assert result.endswith("home.dyn.example.org") and len(result) <= 253
