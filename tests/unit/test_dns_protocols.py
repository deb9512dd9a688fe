"""Pipe (ABI 1 to 5) and remote backend codecs: golden lines, malformed input, and fuzzing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddserver.dns import pipe, remote, zoneindex
from ddserver.dns.purge import purge_commands
from ddserver.dns.zoneindex import ZoneRow
from ddserver.recursor.server import LineSplitter

ROW = ZoneRow(
    3, "dyn.example.org", ("ns1.example.org",), "hostmaster.example.org", 9, 3600, 600, 604800, 60, 3600, None
)
INDEX = zoneindex.build(
    [ROW],
    [("home.dyn.example.org", 3, "192.0.2.1", "2001:db8::1", None, 0)],
    [("home.dyn.example.org", "home.dyn.example.org", "MX", "10 mx.example.org", None)],
)
Q = {
    1: "Q\tHome.dyn.example.org\tIN\tA\t-1\t192.0.2.5",
    2: "Q\tHome.dyn.example.org\tIN\tA\t-1\t192.0.2.5\t192.0.2.1",
    3: "Q\tHome.dyn.example.org\tIN\tA\t-1\t192.0.2.5\t192.0.2.1\t192.0.2.5/32",
}


def session(abi: int) -> pipe.PipeSession:
    s = pipe.PipeSession(lambda: INDEX)
    assert s.handle(f"HELO\t{abi}").startswith("OK\t")
    return s


@pytest.mark.parametrize("abi", [1, 2, 3, 4, 5])
def test_pipe_query_fields_per_abi(abi: int) -> None:
    s = session(abi)
    answer = s.handle(Q[min(abi, 3)])
    if abi < 3:
        assert answer == "DATA\tHome.dyn.example.org\tIN\tA\t60\t3\t192.0.2.1\nEND\n"
    else:
        assert answer == "DATA\t0\t1\tHome.dyn.example.org\tIN\tA\t60\t3\t192.0.2.1\nEND\n"
    # A query with another ABI's field count is refused, not misread.
    wrong = Q[2] if abi != 2 else Q[3]
    assert s.handle(wrong).endswith("FAIL\n")


def test_pipe_mx_priority_field_and_nxdomain() -> None:
    s = session(1)
    answer = s.handle("Q\thome.dyn.example.org\tIN\tMX\t3\t192.0.2.5")
    assert answer == "DATA\thome.dyn.example.org\tIN\tMX\t60\t3\t10\tmx.example.org\nEND\n"
    assert s.handle("Q\tnope.dyn.example.org\tIN\tANY\t-1\t0.0.0.0") == "END\n"
    assert s.handle("Q\twww.example.com\tIN\tSOA\t-1\t0.0.0.0") == "END\n"  # foreign: PowerDNS says REFUSED


def test_pipe_axfr_and_cmd() -> None:
    s = session(4)
    lines = s.handle("AXFR\t3\tdyn.example.org").splitlines()
    assert lines[0].startswith("DATA\t0\t1\tdyn.example.org\tIN\tSOA\t3600\t3\tns1.example.org ")
    assert lines[-1] == "END" and any("\tAAAA\t" in line for line in lines)
    assert s.handle("AXFR\t99").endswith("FAIL\n")
    assert s.handle("CMD\tstats").endswith("FAIL\n")  # no CMD before ABI 5
    s5 = pipe.PipeSession(lambda: INDEX, commands={"stats": lambda args: ["zones: 1"]})
    s5.handle("HELO\t5")
    assert s5.handle("CMD\tstats") == "zones: 1\nEND\n"
    assert s5.handle("CMD\tnope").endswith("END\n")


@pytest.mark.parametrize(
    "line", ["HELO\t6", "HELO", "HELO\tx", "Q\ta\tIN\tA", "PING", "", "x" * 5000, "AXFR\tzz", "END"]
)
def test_pipe_bad_input_gets_fail(line: str) -> None:
    s = pipe.PipeSession(lambda: INDEX)
    s.handle("HELO\t1")
    assert s.handle(line).endswith("FAIL\n")


def test_pipe_nothing_before_the_handshake() -> None:
    s = pipe.PipeSession(lambda: INDEX)
    assert s.handle(Q[1]).endswith("FAIL\n")
    assert s.handle("AXFR\t3").endswith("FAIL\n")


def test_pipe_not_loaded_fails() -> None:
    s = pipe.PipeSession(lambda: None)
    s.handle("HELO\t1")
    assert s.handle(Q[1]).endswith("FAIL\n")


def test_remote_methods() -> None:
    h = remote.RemoteHandler(lambda: INDEX)
    call = lambda m, **p: json.loads(h.handle(json.dumps({"method": m, "parameters": p})))  # noqa: E731
    assert call("initialize", path="/x") == {"result": True}
    found = call("lookup", qtype="ANY", qname="HOME.dyn.example.org.", remote="1.2.3.4", **{"zone-id": 3})
    assert found["result"][0] == {
        "qtype": "A", "qname": "HOME.dyn.example.org.", "content": "192.0.2.1", "ttl": 60, "domain_id": 3
    }  # fmt: skip
    assert call("lookup", qtype="A", qname="nope.dyn.example.org.")["result"] == []
    assert call("lookup", qtype="A", qname="www.example.com.")["result"] is False
    assert call("getAllDomains", include_disabled=False)["result"] == [
        {"id": 3, "zone": "dyn.example.org.", "kind": "native", "serial": 9}
    ]
    assert call("getDomainInfo", name="dyn.example.org.")["result"]["id"] == 3
    assert call("getDomainInfo", name="other.org.")["result"] is False
    assert call("getAllDomainMetadata", name="dyn.example.org.") == {"result": {}}
    assert call("getDomainMetadata", name="dyn.example.org.", kind="PRESIGNED") == {"result": []}
    listed = call("list", zonename="dyn.example.org.", domain_id=3)["result"]
    assert listed[0]["qtype"] == "SOA" and {r["qname"] for r in listed} == {"dyn.example.org.", "home.dyn.example.org."}
    assert call("getDomainKeys", name="dyn.example.org.")["result"] is False
    assert call("LOOKUP", qtype="a", qname="home.dyn.example.org.")["result"][0]["qtype"] == "A"


@pytest.mark.parametrize(
    "message",
    [b"", b"not json", b"[]", b'{"method": 5}', b'{"method":"lookup","parameters":{}}',
     b'{"method":"lookup","parameters":{"qname":5,"qtype":"A"}}', b'{"method":"lookup","parameters":[]}',
     b"\xff\xfe", b"{" * 70000],
)  # fmt: skip
def test_remote_bad_input_gets_false(message: bytes) -> None:
    answer = json.loads(remote.RemoteHandler(lambda: INDEX).handle(message))
    assert answer["result"] is False and isinstance(answer["log"], list)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_remote_always_answers_one_object(data: bytes) -> None:
    answer = remote.RemoteHandler(lambda: INDEX).handle(data)
    assert "\n" not in answer and isinstance(json.loads(answer), dict)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.builds(lambda *f: "\t".join(f), st.sampled_from(["Q", "AXFR", "CMD", "HELO"]), st.text(max_size=40)),
        ),
        max_size=6,
    )
)
def test_fuzz_pipe_every_line_ends_in_end_or_fail(lines: list[str]) -> None:
    s = pipe.PipeSession(lambda: INDEX)
    s.handle("HELO\t3")
    for line in lines:
        line = line.replace("\n", " ")
        answer = s.handle(line)
        assert answer.endswith(("END\n", "FAIL\n")) or answer.startswith("OK\t")
        # Every DATA line has the ABI's field count, so PowerDNS never desynchronises.
        assert all(len(x.split("\t")) >= 9 for x in answer.splitlines() if x.startswith("DATA"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=10))
def test_fuzz_line_splitter_keeps_every_line(chunks: list[bytes]) -> None:
    splitter = LineSplitter(20)
    out = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    stream = b"".join(chunks)
    complete = stream.split(b"\n")[:-1]
    assert len(out) <= len(complete) + 1
    assert all(line is None or len(line) <= 20 for line in out)


def test_line_splitter_oversized_line_is_one_error() -> None:
    splitter = LineSplitter(10)
    assert splitter.feed(b"short\n" + b"x" * 30) == [b"short", None]
    assert splitter.feed(b"y" * 30) == []
    assert splitter.feed(b"tail\nnext\n") == [b"next"]


def test_purge_commands() -> None:
    assert purge_commands({"dyn.example.org", "a.dyn.example.org"}, {"a.dyn.example.org"}) == [
        "PURGE dyn.example.org a.dyn.example.org$"
    ]
    assert len(purge_commands(set(), {f"h{i}.x" for i in range(250)})) == 3
