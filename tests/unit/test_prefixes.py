"""The pure arithmetic of IPv6 prefixes and related names (``ddserver.prefixes``)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddserver import prefixes
from ddserver.errors import ValidationError


def test_a_related_name_takes_the_prefix_and_its_identifier() -> None:
    assert prefixes.combine("2001:db8:1234:5600::/56", 64, "::1:2:3:4") == "2001:db8:1234:5600:1:2:3:4"
    assert prefixes.combine("2001:db8:1:2::99", 64, "::211:32ff:fe12:3456") == "2001:db8:1:2:211:32ff:fe12:3456"
    # A /56 related name picks its subnet with the identifier's bits past the /56.
    assert prefixes.combine("2001:db8:1234:5600::/56", 56, "::1:0:0:0:5") == "2001:db8:1234:5601::5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001:db8:1234::/56", "2001:db8:1234::/56"),
        ("2001:db8:1234:5600::/56", "2001:db8:1234:5600::/56"),
        (" 2001:DB8:1234:56ff::1/56 ", "2001:db8:1234:5600::/56"),
        ("2001:db8:1:2::", "2001:db8:1:2::/64"),
        ("2001:db8::1/128", "2001:db8::1/128"),
    ],
)
def test_prefixes_as_routers_send_them(text: str, expected: str) -> None:
    assert str(prefixes.parse_prefix(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "192.0.2.0/24", "2001:db8::/0", "2001:db8::/7", "2001:db8::/129", "2001:db8::/x", "nope", "ff02::/16", "::/8"],
)
def test_bad_prefixes_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        prefixes.parse_prefix(text)


@pytest.mark.parametrize(
    ("text", "length", "expected"),
    [
        ("::1:2:3:4", 64, "::1:2:3:4"),
        ("1:2:3:4", 64, "::1:2:3:4"),
        ("::211:32FF:FE12:3456", 64, "::211:32ff:fe12:3456"),
    ],
)
def test_interface_identifiers(text: str, length: int, expected: str) -> None:
    assert prefixes.interface_id(text, length) == expected


@pytest.mark.parametrize(
    ("text", "length", "message"),
    [
        ("", 64, "empty"),
        ("::", 64, "all zeros"),
        ("hello", 64, "not an interface identifier"),
        ("::1/64", 64, "not an interface identifier"),
        ("1::1:2:3:4", 64, "longer than the 64 bits"),
        ("::1:0:0:0:5", 64, "longer than the 64 bits"),
    ],
)
def test_bad_identifiers_say_why(text: str, length: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        prefixes.interface_id(text, length)


@pytest.mark.parametrize("value", ["7", "128", "x", ""])
def test_prefix_lengths_out_of_range(value: str) -> None:
    with pytest.raises(ValidationError):
        prefixes.prefix_len(value)


def test_the_base_moves_with_the_address_unless_a_prefix_comes_along() -> None:
    after = prefixes.prefix_after
    assert after("2001:db8::1", "2001:db8::1", "2001:db8:9::/56", None) == "2001:db8:9::/56"
    assert after("2001:db8::1", "2001:db8:1::1", "2001:db8:9::/56", None) is None
    assert after("2001:db8::1", "2001:db8:1::1", None, "2001:db8:7::/56") == "2001:db8:7::/56"
    # offline=YES or /nic/delete of IPv6 on a host that had only a prefix: the prefix goes too.
    assert after(None, None, "2001:db8:9::/56", None, cleared=True) is None
    rule = prefixes.Related("::5", 64, follow_ipv4=True)
    assert prefixes.related_addresses(rule, "192.0.2.1", "2001:db8::1", None) == ("192.0.2.1", "2001:db8::5")
    assert prefixes.related_addresses(rule, None, "2001:db8::1", "2001:db8:7::/48") == (None, "2001:db8:7::5")
    no_v4 = prefixes.Related("::5", 64, follow_ipv4=False)
    assert prefixes.related_addresses(no_v4, "192.0.2.1", None, None) == (None, None)


addresses = st.integers(min_value=1 << 125, max_value=(1 << 127) - 1).map(lambda n: ipaddress.IPv6Address(n).compressed)


@given(
    base=addresses,
    length=st.integers(min_value=8, max_value=127),
    ifid=st.integers(min_value=1, max_value=(1 << 120) - 1),
)
def test_combine_keeps_the_prefix_bits_and_the_identifier_bits(base: str, length: int, ifid: int) -> None:
    ifid &= (1 << (128 - length)) - 1
    if ifid == 0:
        ifid = 1
    text = prefixes.interface_id(ipaddress.IPv6Address(ifid).compressed, length)
    result = int(ipaddress.IPv6Address(prefixes.combine(base, length, text)))
    host_bits = (1 << (128 - length)) - 1
    assert result & host_bits == ifid
    assert result >> (128 - length) == int(ipaddress.IPv6Address(base)) >> (128 - length)
    # The result is an address a host can have, in the network of the base.
    assert not ipaddress.IPv6Address(result).is_multicast
    assert ipaddress.IPv6Address(result) in ipaddress.IPv6Network(f"{base}/{length}", strict=False)


@given(base=addresses, length=st.integers(min_value=8, max_value=128))
def test_a_parsed_prefix_is_its_own_network(base: str, length: int) -> None:
    prefix = prefixes.parse_prefix(f"{base}/{length}")
    assert ipaddress.IPv6Network(str(prefix)) == ipaddress.IPv6Network(f"{base}/{length}", strict=False)
    assert prefixes.parse_prefix(str(prefix)) == prefix
