"""Validation of host names, labels, addresses, user names and e-mail, with messages a person understands."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable

import idna

from ddserver.errors import ValidationError

#: TSIG algorithms a zone may name (RFC 8945), the default first; ``dns.rfc2136.TsigAlgorithm`` signs with them.
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224", "hmac-sha1", "hmac-md5")

_LDH = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


def _to_alabel(label: str) -> str:
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationError(f"'{label}' is not a valid international name: {exc}")


def label(text: str, *, reserved: Iterable[str] = ()) -> str:
    """Check one host label (the part a user chooses) and return it as a lower-case A-label.

    :raises ValidationError: naming what is wrong.
    """
    text = text.strip()
    if not text:
        raise ValidationError("The name is empty.")
    if "." in text:
        raise ValidationError(f"'{text}' contains a dot; choose a single name such as 'home'.")
    alabel = _to_alabel(text)
    if len(alabel) > 63:
        raise ValidationError(f"'{text}' is longer than 63 characters.")
    if alabel.startswith("-") or alabel.endswith("-"):
        raise ValidationError(f"'{text}' may not begin or end with a hyphen.")
    if not _LDH.match(alabel):
        raise ValidationError(f"'{text}' may contain only letters, digits and hyphens.")
    if alabel[2:4] == "--" and not alabel.startswith("xn--"):
        raise ValidationError(f"'{text}' may not have hyphens in the third and fourth places.")
    if alabel in {r.lower() for r in reserved}:
        raise ValidationError(f"'{text}' is reserved; choose another name.")
    return alabel


def hostname(text: str, *, reserved: Iterable[str] = ()) -> str:
    """Check a fully qualified name and return it lower-case, as A-labels, without the trailing dot.

    ``reserved`` applies to the first label only (the part a user chose).

    :raises ValidationError: naming what is wrong.
    """
    name = text.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise ValidationError("The host name is empty.")
    parts = name.split(".")
    if any(not part for part in parts):
        raise ValidationError(f"'{text}' has an empty label (two dots in a row).")
    labels = [label(parts[0], reserved=reserved)] + [label(part) for part in parts[1:]]
    result = ".".join(labels)
    if len(result) > 253:
        raise ValidationError(f"'{text}' is longer than 253 characters.")
    return result


def zone_name(text: str) -> str:
    """Check a zone name: a host name with at least two labels."""
    name = hostname(text)
    if "." not in name:
        raise ValidationError(f"'{text}' is not a zone name with at least two labels, such as dyn.example.org.")
    return name


def to_unicode(name: str) -> str:
    """Show an A-label name as people read it (best effort; invalid names come back unchanged)."""
    try:
        return idna.decode(name)
    except (idna.IDNAError, UnicodeError):
        return name


def ipv4(text: str) -> str:
    """Check an IPv4 address and return its canonical form.

    :raises ValidationError: when it is not one.
    """
    try:
        address = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise ValidationError(f"'{text}' is not a valid IPv4 address.")
    check_host_address(address)
    return str(address)


def ipv6(text: str) -> str:
    """Check an IPv6 address (no scope) and return its canonical compressed form.

    :raises ValidationError: when it is not one.
    """
    text = text.strip()
    if "%" in text:
        raise ValidationError(f"'{text}' has a scope (%...); give a global address.")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValidationError(f"'{text}' is not a valid IPv6 address.")
    check_host_address(address)
    return address.compressed


def check_host_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Refuse what no host can be reached at: the unspecified address (``0.0.0.0``, ``::``), a multicast
    address, or an IPv4 address of the reserved block 240.0.0.0/4 (the broadcast address among them).
    Private, loopback and link-local addresses pass: people publish those on purpose.

    :raises ValidationError: naming what the address is.
    """
    if address.is_unspecified:
        raise ValidationError(f"'{address}' is the unspecified address, not a host's.")
    if address.is_multicast:
        raise ValidationError(f"'{address}' is a multicast address, not a host's.")
    if address.version == 4 and address.is_reserved:
        raise ValidationError(f"'{address}' is a reserved address, not a host's.")


def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an address of either family; an IPv4-mapped IPv6 address becomes IPv4.

    :raises ValidationError: when it is neither, or has a scope.
    """
    text = text.strip()
    if "%" in text:
        raise ValidationError(f"'{text}' has a scope (%...); give a global address.")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(f"'{text}' is not a valid IP address.")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def username(text: str) -> str:
    """Check a user name: 1 to 63 lower-case letters, digits, dots, hyphens and underscores."""
    name = text.strip().lower()
    if not name:
        raise ValidationError("The user name is empty.")
    if not _USERNAME.match(name):
        raise ValidationError(
            f"'{text}' is not a valid user name: use up to 63 letters, digits, dots, hyphens and "
            "underscores, starting with a letter or digit."
        )
    return name


def email(text: str) -> str:
    """Check an e-mail address and return it with its domain lower-case and as A-labels."""
    address = text.strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise ValidationError(f"'{text}' is not an e-mail address (name@example.org).")
    if not _EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValidationError(f"'{text}' is not a valid e-mail address.")
    try:
        domain = hostname(domain)
    except ValidationError:
        raise ValidationError(f"'{text}' is not a valid e-mail address: the domain is not valid.")
    if "." not in domain:
        raise ValidationError(f"'{text}' is not a valid e-mail address: the domain has no dot.")
    return f"{local.lower()}@{domain}"


def ttl(value: int | str, *, minimum: int = 1, maximum: int = 86400) -> int:
    """Check a TTL in seconds."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{value}' is not a whole number of seconds.")
    if not minimum <= number <= maximum:
        raise ValidationError(f"The TTL must be between {minimum} and {maximum} seconds.")
    return number


def hostmaster(text: str) -> str:
    """Turn a hostmaster e-mail address (or an SOA rname) into the dotted SOA rname form.

    ``hostmaster@example.org`` becomes ``hostmaster.example.org``; dots in the local part are escaped.
    """
    text = text.strip().rstrip(".")
    if "@" in text:
        local, _, domain = email(text).rpartition("@")
        return local.replace(".", "\\.") + "." + domain
    name = hostname(text)
    if "." not in name:
        raise ValidationError(f"'{text}' is not a hostmaster address such as hostmaster@example.org.")
    return name


def rname_to_email(rname: str) -> str:
    """Show an SOA rname as the e-mail address it stands for."""
    parts = re.split(r"(?<!\\)\.", rname, maxsplit=1)
    if len(parts) != 2:
        return rname
    return parts[0].replace("\\.", ".") + "@" + parts[1]


def notify_address(text: str) -> str:
    """A secondary's address for NOTIFY: an IP address, ``IPv4:port`` or ``[IPv6]:port``, in the canonical
    form PowerDNS reads (port 53 when none is given).

    :raises ValidationError: for anything else.
    """
    value = text.strip()
    host, port = value, None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValidationError(f"{text!r} is not an address or address:port")
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValidationError(f"{text!r} is not an address or address:port") from None
    if port is None:
        return str(address)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError(f"{text!r}: the port must be a number from 1 to 65535")
    return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"


def tsig_secret(text: str) -> str:
    """A TSIG secret in base64 (as ``tsig-keygen`` prints it), of at least 16 bytes.

    :raises ValidationError: for anything else.
    """
    value = "".join(text.split())
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("the secret is not base64, such as tsig-keygen prints") from None
    if len(raw) < 16:
        raise ValidationError("the secret is too short: give at least 16 bytes (128 bits)")
    return value


#: The longest TXT value a host's record may hold (one character-string).
MAX_TXT_LENGTH = 255
_RECORD_LABEL = re.compile(r"^_?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def txt_value(text: str) -> str:
    """Check a TXT record's value (an ACME challenge and the like): printable ASCII without spaces, quotes or
    backslashes, 1 to 255 characters (what the updater's ACME hook takes, too).

    :raises ValidationError: naming what is wrong.
    """
    if not 0 < len(text) <= MAX_TXT_LENGTH:
        raise ValidationError(f"A TXT value has 1 to {MAX_TXT_LENGTH} characters.")
    if not all(33 <= ord(c) <= 126 and c not in '"\\' for c in text):
        raise ValidationError("A TXT value holds printable ASCII without spaces, quotes or backslashes.")
    return text


def record_name(text: str, host: str) -> str:
    """The full name of a record at ``host`` (an empty ``text`` or ``@``) or below it (``_acme-challenge``:
    labels of letters, digits and hyphens, each may begin with an underscore).

    :raises ValidationError: naming what is wrong.
    """
    relative = text.strip().lower().rstrip(".")
    if relative in ("", "@"):
        return host
    if relative.endswith("." + host):
        relative = relative[: -len(host) - 1]
    if not all(_RECORD_LABEL.match(part) for part in relative.split(".")):
        raise ValidationError(f"'{text}' is not a name below the host, such as _acme-challenge.")
    name = f"{relative}.{host}"
    if len(name) > 253:
        raise ValidationError(f"'{text}' makes a name longer than 253 characters.")
    return name
