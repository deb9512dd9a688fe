"""The pure RFC 2136 core: desired rrsets, UPDATE messages, and errors a person understands."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import pytest

from ddserver.dns import rfc2136
from ddserver.store.dnsdata import HostData, RecordData

ZONE = "dyn.example.org"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="


def target(**kw):
    settings = dict(
        zone=ZONE,
        server="127.0.0.1:5353",
        tsig_name="ddserver-key",
        tsig_algorithm="hmac-sha256",
        tsig_secret=SECRET,
    )
    settings.update(kw)
    return rfc2136.Target.from_settings(**settings)


def host(name, ipv4=None, ipv6=None, ttl=None, wildcard=False):
    return HostData(name, 1, ipv4, ipv6, ttl, wildcard)


def test_target_parses_and_hides_the_secret():
    t = target()
    assert (t.host, t.port, t.transport) == ("127.0.0.1", 5353, rfc2136.Transport.TCP)
    assert SECRET not in repr(t)
    assert t.describe() == "dyn.example.org at 127.0.0.1:5353"
    v6 = target(server="[::1]:53", transport="udp", tsig_algorithm="hmac-sha512")
    assert v6.host == "::1" and v6.server == "[::1]:53" and v6.transport is rfc2136.Transport.UDP
    assert v6.key().algorithm == dns.name.from_text("hmac-sha512")
    assert target(tsig_algorithm="hmac-md5").key().algorithm == dns.tsig.HMAC_MD5
    assert target(tsig_name=None, tsig_secret=None).key() is None


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"server": "nohost"}, "expected HOST:PORT"),
        ({"server": "h:99999"}, "expected HOST:PORT"),
        ({"server": None}, "no RFC 2136 server"),
        ({"tsig_algorithm": "hmac-sha3"}, "expected one of"),
        ({"transport": "sctp"}, "expected tcp or udp"),
        ({"tsig_secret": None}, "both a name and a secret"),
        ({"tsig_secret": "not base64!"}, "not valid base64"),
    ],
)
def test_target_rejects_bad_settings_clearly(kw, words):
    with pytest.raises(rfc2136.ConfigurationError, match=words) as info:
        target(**kw)
    assert SECRET not in str(info.value)


def test_desired_state_ttls_wildcards_and_txt():
    hosts = [
        host("a.dyn.example.org", "192.0.2.1", "2001:db8:0:0::1"),
        host("b.dyn.example.org", None, "2001:db8::2", ttl=300, wildcard=True),
        host("empty.dyn.example.org"),
    ]
    records = [
        RecordData("_acme-challenge.a.dyn.example.org", 1, "TXT", "token-1", None),
        RecordData("_acme-challenge.a.dyn.example.org", 1, "TXT", "token-2", 30),
        RecordData("b.dyn.example.org", 1, "TXT", "x" * 300, None),
        RecordData("a.dyn.example.org", 1, "BOGUS", "x", None),
    ]
    desired, problems = rfc2136.desired_state(ZONE, hosts, records, default_ttl=60)
    a = desired["a.dyn.example.org"]
    assert a[dns.rdatatype.A].ttl == 60
    assert {r.to_text() for r in a[dns.rdatatype.AAAA].rdatas} == {"2001:db8::1"}
    assert dns.rdatatype.A not in desired["b.dyn.example.org"]
    assert desired["*.b.dyn.example.org"][dns.rdatatype.AAAA].ttl == 300
    txt = desired["b.dyn.example.org"][dns.rdatatype.TXT]
    assert txt.ttl == 300 and [len(s) for s in next(iter(txt.rdatas)).strings] == [255, 45]
    acme = desired["_acme-challenge.a.dyn.example.org"][dns.rdatatype.TXT]
    assert acme.ttl == 30 and len(acme.rdatas) == 2  # one rrset, the shorter TTL
    assert desired["empty.dyn.example.org"] == {}
    assert len(problems) == 1 and "BOGUS" in problems[0]


def test_managed_names_skip_the_apex_and_add_wildcards():
    names = rfc2136.managed_names(ZONE, [ZONE, "a.dyn.example.org", "a.dyn.example.org", "*", "x.other.org"])
    assert names == ["a.dyn.example.org", "*.a.dyn.example.org"]


def test_update_replaces_and_deletes_with_soa_prerequisite():
    t = target()
    desired, _ = rfc2136.desired_state(ZONE, [host("a.dyn.example.org", "192.0.2.1")], [], default_ttl=60)
    soa = dns.rdata.from_text("IN", "SOA", "ns1.example.org. hostmaster.example.org. 7 3600 600 604800 60")
    update = rfc2136.build_update(t, ["a.dyn.example.org", "*.a.dyn.example.org"], desired, soa=soa)
    text = update.to_text()
    assert update.keyname == dns.name.from_text("ddserver-key")
    assert "dyn.example.org. 0 IN SOA ns1.example.org." in text  # the value-dependent prerequisite
    assert "a.dyn.example.org. ANY A" in text and "a.dyn.example.org. 60 IN A 192.0.2.1" in text
    assert "a.dyn.example.org. ANY AAAA" in text and "a.dyn.example.org. ANY TXT" in text
    assert "*.a.dyn.example.org. ANY A" in text
    # The wire form round-trips with the key: it is really signed.
    keyring = {t.key().name: t.key()}
    wire = update.to_wire()
    parsed = dns.message.from_wire(wire, keyring=keyring)
    assert parsed.had_tsig


def test_update_refuses_names_outside_the_zone():
    with pytest.raises(rfc2136.NotZone):
        rfc2136.build_update(target(), ["x.example.com"], {})


def test_chunks():
    assert [len(c) for c in rfc2136.chunks([str(i) for i in range(450)], 200)] == [200, 200, 50]


@pytest.mark.parametrize(
    "rcode, cls, words",
    [
        (dns.rcode.NOTAUTH, rfc2136.NotAuth, "NOTAUTH"),
        (dns.rcode.REFUSED, rfc2136.Refused, "update-policy"),
        (dns.rcode.NOTZONE, rfc2136.NotZone, "outside the zone"),
        (dns.rcode.BADKEY, rfc2136.BadKey, "does not know the TSIG key ddserver-key (hmac-sha256)"),
        (dns.rcode.BADSIG, rfc2136.BadSig, "secret differs"),
        (dns.rcode.BADTIME, rfc2136.BadTime, "clocks"),
        (dns.rcode.NXRRSET, rfc2136.ZoneChanged, "retrying"),
        (dns.rcode.SERVFAIL, rfc2136.ServerFailure, "SERVFAIL"),
        (4095, rfc2136.ServerFailure, "4095"),
    ],
)
def test_rcodes_map_to_errors(rcode, cls, words):
    error = rfc2136.error_for_rcode(target(), rcode)
    assert type(error) is cls and words in error.message
    assert error.message.startswith("dyn.example.org at 127.0.0.1:5353: ")
    assert SECRET not in error.message


@pytest.mark.parametrize(
    "exc, cls, words",
    [
        (dns.tsig.PeerBadKey(), rfc2136.BadKey, "BADKEY"),
        (dns.tsig.PeerBadSignature(), rfc2136.BadSig, "BADSIG"),
        (dns.tsig.PeerBadTime(), rfc2136.BadTime, "BADTIME"),
        (dns.tsig.BadSignature(), rfc2136.BadSig, "not signed with the key"),
        (dns.exception.Timeout(), rfc2136.Timeout, "no answer within 5 s"),
        (ConnectionRefusedError(111, "Connection refused"), rfc2136.Unreachable, "connection refused"),
        (EOFError(), rfc2136.Unreachable, "closed the connection"),
        (OSError(113, "No route to host"), rfc2136.Unreachable, "No route to host"),
        (dns.exception.FormError("bad"), rfc2136.ServerFailure, "bad answer"),
    ],
)
def test_exceptions_map_to_errors(exc, cls, words):
    error = rfc2136.error_for_exception(target(), exc, timeout=5.0)
    assert type(error) is cls and words in error.message


def test_unknown_exceptions_are_not_swallowed():
    with pytest.raises(KeyError):
        rfc2136.error_for_exception(target(), KeyError("x"), timeout=1)


def test_answers_are_checked():
    t = target(tsig_name=None, tsig_secret=None)
    query = rfc2136.soa_query(t)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.REFUSED)
    with pytest.raises(rfc2136.Refused):
        rfc2136.soa_from_answer(t, response)
    response.set_rcode(dns.rcode.NOERROR)
    with pytest.raises(rfc2136.NotAuth, match="does not serve it"):
        rfc2136.soa_from_answer(t, response)
    soa = dns.rrset.from_text(ZONE + ".", 60, "IN", "SOA", "ns1.example.org. h.example.org. 9 1 1 1 1")
    response.answer.append(soa)
    assert rfc2136.soa_from_answer(t, response).serial == 9


def test_server_state_and_differences():
    t = target()
    origin = ZONE + "."
    rrsets = [
        dns.rrset.from_text(origin, 60, "IN", "SOA", "ns1.dyn.example.org. h.example.org. 9 1 1 1 1"),
        dns.rrset.from_text(origin, 60, "IN", "NS", "ns1.dyn.example.org."),
        dns.rrset.from_text(origin, 60, "IN", "A", "192.0.2.99"),
        dns.rrset.from_text("ns1." + origin, 60, "IN", "A", "192.0.2.53"),
        dns.rrset.from_text("a." + origin, 60, "IN", "A", "192.0.2.1"),
        dns.rrset.from_text("b." + origin, 60, "IN", "A", "192.0.2.2"),
        dns.rrset.from_text("c." + origin, 60, "IN", "AAAA", "2001:db8::3"),
        dns.rrset.from_text("c." + origin, 60, "IN", "MX", "10 mail.example.org."),
        dns.rrset.from_text("stale." + origin, 60, "IN", "TXT", '"old"'),
    ]
    protected = rfc2136.nameserver_names(rrsets, t.origin)
    assert protected == ["ns1.dyn.example.org"]
    server = rfc2136.server_state(t, rrsets, protected)
    assert set(server) == {"a.dyn.example.org", "b.dyn.example.org", "c.dyn.example.org", "stale.dyn.example.org"}
    desired, _ = rfc2136.desired_state(
        ZONE,
        [
            host("a.dyn.example.org", "192.0.2.1"),
            host("b.dyn.example.org", "192.0.2.20"),
            host("c.dyn.example.org", None, "2001:db8:0::3"),
            host("new.dyn.example.org", "192.0.2.4"),
        ],
        [],
        default_ttl=60,
    )
    assert rfc2136.differences(server, desired) == [
        "b.dyn.example.org",
        "new.dyn.example.org",
        "stale.dyn.example.org",
    ]


def test_the_tsig_algorithm_list_is_the_one_the_worker_signs_with():
    from ddserver import validate

    assert tuple(a.value for a in rfc2136.TsigAlgorithm) == validate.TSIG_ALGORITHMS
