"""IPv6 prefixes and related names, pure: a related name's address is its main host's prefix plus its own
interface identifier, and optionally the main host's IPv4 address.

No I/O here: the store calls these inside the transactions that write a host and its related names, and the
updater, the web interface and the command line use them to check what people type.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ddserver.errors import ValidationError

#: The prefix length of a related name unless its owner gives another (a LAN is a /64).
DEFAULT_PREFIX_LEN = 64
#: The prefix length of a prefix sent without one (``2001:db8:1:2::`` is taken as ``2001:db8:1:2::/64``).
DEFAULT_UPDATE_PREFIX_LEN = 64
_ALL = (1 << 128) - 1


def _mask(prefix_len: int) -> int:
    """The netmask of ``prefix_len`` bits, as an integer."""
    return _ALL ^ ((1 << (128 - prefix_len)) - 1)


def prefix_len(value: int | str) -> int:
    """A related name's prefix length: a whole number from 8 to 127 (the first 8 bits come from the main
    host's prefix, so no identifier makes a multicast address).

    :raises ValidationError: naming what is wrong.
    """
    try:
        number = int(str(value).strip().lstrip("/"))
    except ValueError:
        raise ValidationError(f"'{value}' is not a prefix length; give a whole number such as 64.")
    if not 8 <= number <= 127:
        raise ValidationError(f"The prefix length must be from 8 to 127 (a LAN is 64), not {number}.")
    return number


def interface_id(text: str, length: int = DEFAULT_PREFIX_LEN) -> str:
    """An interface identifier, in IPv6 notation (``::1:2:3:4``, ``::211:32ff:fe12:3456``); the groups alone
    (``1:2:3:4``) are read as the last ones. It must fit in the ``128 - length`` bits after the prefix and
    not be zero (that address is the subnet-router anycast address, no host's).

    :returns: its compressed form (``::1:2:3:4``).
    :raises ValidationError: naming what is wrong.
    """
    text = text.strip()
    if not text:
        raise ValidationError("The interface identifier is empty; give one such as ::1:2:3:4.")
    if "%" in text or "/" in text:
        raise ValidationError(f"'{text}' is not an interface identifier; give one such as ::1:2:3:4.")
    try:
        value = ipaddress.IPv6Address(text)
    except ValueError:
        value = None
        if "::" not in text and text.count(":") < 7:
            try:
                value = ipaddress.IPv6Address("::" + text)
            except ValueError:
                pass
    if value is None:
        raise ValidationError(f"'{text}' is not an interface identifier; give one such as ::1:2:3:4.")
    number = int(value)
    if number == 0:
        raise ValidationError("The interface identifier is all zeros; give one such as ::1:2:3:4.")
    if number >> (128 - length):
        raise ValidationError(
            f"'{text}' is longer than the {128 - length} bits after a /{length} prefix; "
            f"give one such as ::1:2:3:4, or a shorter prefix length."
        )
    return value.compressed


@dataclass(frozen=True, slots=True)
class Prefix:
    """A prefix an update carries: its network address and its length."""

    address: str
    length: int

    def __str__(self) -> str:
        return f"{self.address}/{self.length}"


def parse_prefix(text: str) -> Prefix:
    """A prefix from an update: ``2001:db8:1234::/56``, ``2001:db8:1234:5600::/56`` (FRITZ!Box's
    ``<ip6lanprefix>``) or an address in it with its length (the bits past the length are dropped); without a
    length it is a /64.

    :raises ValidationError: for anything else, an IPv4 prefix, a length below 8, or a multicast prefix.
    """
    text = text.strip()
    address_text, sep, length_text = text.partition("/")
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise ValidationError(f"'{text}' is not an IPv6 prefix such as 2001:db8:1234::/56.")
    if address.ipv4_mapped is not None or "%" in address_text:
        raise ValidationError(f"'{text}' is not an IPv6 prefix such as 2001:db8:1234::/56.")
    length = DEFAULT_UPDATE_PREFIX_LEN
    if sep:
        if not length_text.isdigit() or not 8 <= int(length_text) <= 128:
            raise ValidationError(f"'{text}': the prefix length must be from 8 to 128.")
        length = int(length_text)
    network = ipaddress.IPv6Address(int(address) & _mask(length))
    if network.is_multicast or network.is_unspecified:
        raise ValidationError(f"'{text}' is not a prefix a network can have.")
    return Prefix(network.compressed, length)


def combine(base: str, length: int, ifid: str) -> str:
    """The address of a related name: the first ``length`` bits of ``base`` (the main host's prefix or
    address), then the identifier's bits.

    >>> combine("2001:db8:1234:5600::/56", 64, "::1:2:3:4")
    '2001:db8:1234:5600:1:2:3:4'
    """
    network = int(ipaddress.IPv6Address(base.partition("/")[0]))
    mask = _mask(length)
    return ipaddress.IPv6Address((network & mask) | (int(ipaddress.IPv6Address(ifid)) & ~mask & _ALL)).compressed


def prefix_after(
    old_ipv6: str | None,
    new_ipv6: str | None,
    old_prefix: str | None,
    given: str | None,
    *,
    cleared: bool = False,
) -> str | None:
    """The prefix a host keeps after an update: the one the update carries; else none once its IPv6 address
    changed (the address is the base again) or the update cleared it (``offline``, ``/nic/delete``: the host's
    network is gone); else the one it had."""
    if given is not None:
        return given
    if cleared or new_ipv6 != old_ipv6:
        return None
    return old_prefix


def base_of(ipv6: str | None, prefix: str | None) -> str | None:
    """What related names take their prefix from: the last prefix sent, else the host's IPv6 address."""
    return prefix if prefix is not None else ipv6


@dataclass(frozen=True, slots=True)
class Related:
    """A related name as the rules need it."""

    ifid: str
    prefix_len: int
    follow_ipv4: bool


def related_addresses(
    related: Related, main_ipv4: str | None, main_ipv6: str | None, main_prefix: str | None
) -> tuple[str | None, str | None]:
    """The addresses a related name has for its main host's ``main_ipv4``, ``main_ipv6`` and prefix: its
    identifier in the main host's prefix (none while the main host has neither prefix nor IPv6 address),
    and the main host's IPv4 address if it follows it (else none: a related name has no address of its own)."""
    base = base_of(main_ipv6, main_prefix)
    ipv6 = None if base is None else combine(base, related.prefix_len, related.ifid)
    ipv4 = main_ipv4 if related.follow_ipv4 else None
    return ipv4, ipv6
