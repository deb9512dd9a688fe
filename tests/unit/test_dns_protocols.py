"""Pipe (ABI 1 to 5) and remote backend codecs: golden lines, malformed input, and fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddserver.dns import pipe, remote, zoneindex
from ddserver.dns.purge import purge_commands
from ddserver.recursor.daemon import _pipe_responder
from ddserver.recursor.metrics import QueryCounter
from ddserver.recursor.server import (
    LineSplitter,
    Quick,
    Responder,
    ResponseCache,
    StreamProgress,
    Watchdog,
    serve_stream,
)
from ddserver.store.dnsdata import ZoneRow
from tests import support

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


@pytest.mark.parametrize("abi", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "qname,qtype",
    [("Home.dyn.example.org", "A"), ("home.dyn.example.org.", "any"), ("home.dyn.example.org", "AAAA"),
     ("home.dyn.example.org", "MX"), ("dyn.example.org", "SOA"), ("DYN.example.org", "ANY"),
     ("dyn.example.org", "NS"), ("nope.dyn.example.org", "A"), ("home.dyn.example.org", "TXT"),
     ("www.example.com", "SOA"), ("home.dyn.example.org", "TYPE65534"), ("h\xe9.dyn.example.org", "A")],
)  # fmt: skip
def test_pipe_query_in_one_step_answers_as_handle_does(abi: int, qname: str, qtype: str) -> None:
    s, counted = session(abi), []
    s.on_query = lambda *kind: counted.append(kind)
    line = Q[min(abi, 3)].replace("Home.dyn.example.org", qname).replace("\tA\t", f"\t{qtype}\t")
    answer = s.query(line.encode("latin-1") + b"\n")
    assert answer == s.handle(line).encode("latin-1")
    assert counted[0] == counted[1]  # counted alike


@pytest.mark.parametrize(
    "request_",
    [Q[3].encode(),  # no newline yet: the rest of the line is still to come
     Q[3].encode() + b"\n" + Q[3].encode() + b"\n",  # two requests at once
     b"Q\thome.dyn.example.org\nQ\tIN\tA\t-1\t1.2.3.4\t1.2.3.4\t0.0.0.0/0\n",  # two lines, 8 fields in all
     Q[2].encode() + b"\n",  # another ABI's field count: handle FAILs it, with a log line
     b"HELO\t5\n", b"AXFR\t3\n", b"CMD\tstats\n", b"", b"\n",
     b"Q\t" + b"x" * 5000 + b"\tIN\tA\t-1\t1.2.3.4\t1.2.3.4\t0.0.0.0/0\n"],
)  # fmt: skip
def test_pipe_query_in_one_step_leaves_everything_else_to_handle(request_: bytes) -> None:
    assert session(5).query(request_) is None
    before_helo = pipe.PipeSession(lambda: INDEX)
    assert before_helo.query(Q[3].encode() + b"\n") is None  # handle answers "expected HELO first"
    assert pipe.PipeSession(lambda: None).query(Q[3].encode() + b"\n") is None  # not loaded: handle FAILs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([1, 2, 5]))
def test_fuzz_pipe_query_in_one_step_is_handle_or_nothing(data: bytes, abi: int) -> None:
    s = session(abi)
    for request in (data, data + b"\n", b"Q\t" + data + b"\n", Q[min(abi, 3)].encode()[:-1] + data + b"\n"):
        answer = s.query(request)
        if answer is not None:
            line = request[:-1].rstrip(b"\r")
            assert request.count(b"\n") == 1 and answer == s.handle(line.decode("latin-1")).encode("latin-1")


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
        {"id": 3, "zone": "dyn.example.org.", "kind": "master", "serial": 9, "notified_serial": 0, "masters": []}
    ]
    assert call("getDomainInfo", name="dyn.example.org.")["result"]["id"] == 3
    assert call("getDomainInfo", name="other.org.")["result"] is False
    assert call("getAllDomainMetadata", name="dyn.example.org.") == {"result": {}}
    assert call("getDomainMetadata", name="dyn.example.org.", kind="PRESIGNED") == {"result": []}
    listed = call("list", zonename="dyn.example.org.", domain_id=3)["result"]
    assert listed[0]["qtype"] == "SOA" and {r["qname"] for r in listed} == {"dyn.example.org.", "home.dyn.example.org."}
    assert call("getDomainKeys", name="dyn.example.org.")["result"] == []  # not signed
    assert call("LOOKUP", qtype="a", qname="home.dyn.example.org.")["result"][0]["qtype"] == "A"


def test_remote_secondaries_notify_metadata_and_transfer_keys() -> None:
    """PowerDNS's primary mode: getUpdatedMasters lists the zones whose serial moved since setNotified (all at
    first); the metadata and the TSIG key come from the zone's settings, the secret opened on demand."""
    row = dataclasses.replace(
        ROW, also_notify=("192.0.2.7", "192.0.2.8:5300"), transfer_keys=(("xfr.example.org", "hmac-sha256", "S"),)
    )
    index = zoneindex.build([row, dataclasses.replace(ROW, id=4, name="other.example.org", serial=5)], [], [])
    opened: list[tuple[str, str]] = []

    def unseal(sealed: str, context: str) -> str:
        opened.append((sealed, context))
        return "c2VjcmV0c2VjcmV0c2VjcmV0"

    h = remote.RemoteHandler(lambda: index, unseal=unseal, allow_axfr_from=("127.0.0.0/8",))
    call = lambda m, **p: json.loads(h.handle(json.dumps({"method": m, "parameters": p})))  # noqa: E731
    updated = call("getUpdatedMasters")["result"]
    assert sorted((d["id"], d["kind"], d["serial"], d["notified_serial"]) for d in updated) == [
        (3, "master", 9, 0), (4, "master", 5, 0)
    ]  # fmt: skip
    assert call("setNotified", id=3, serial=9) == {"result": True}
    assert [d["id"] for d in call("getUpdatedMasters")["result"]] == [4]
    assert call("getDomainInfo", name="dyn.example.org.")["result"]["notified_serial"] == 9
    index.set_zone(dataclasses.replace(row, serial=10))  # a change: notified again
    assert sorted(d["id"] for d in call("getUpdatedMasters")["result"]) == [3, 4]
    assert call("getAllDomainMetadata", name="dyn.example.org.")["result"] == {
        "ALSO-NOTIFY": ["192.0.2.7", "192.0.2.8:5300"], "TSIG-ALLOW-AXFR": ["xfr.example.org"]
    }  # fmt: skip
    assert call("getDomainMetadata", name="dyn.example.org.", kind="TSIG-ALLOW-AXFR")["result"] == ["xfr.example.org"]
    # A zone without keys may be transferred unsigned from the configured networks, and only then.
    assert call("getAllDomainMetadata", name="other.example.org.")["result"] == {"ALLOW-AXFR-FROM": ["127.0.0.0/8"]}
    assert call("getDomainMetadata", name="dyn.example.org.", kind="ALLOW-AXFR-FROM")["result"] == []
    assert call("getDomainMetadata", name="nope.example.org.", kind="ALSO-NOTIFY")["result"] == []
    assert call("getTSIGKey", name="XFR.example.org.")["result"] == {
        "algorithm": "hmac-sha256", "content": "c2VjcmV0c2VjcmV0c2VjcmV0"
    }  # fmt: skip
    assert opened == [("S", "transfer-tsig:xfr.example.org")]
    assert call("getTSIGKey", name="other.example.org.")["result"] is False
    assert call("setNotified", id="x", serial=1)["result"] is False  # malformed: refused, not a crash
    assert (
        remote.RemoteHandler(lambda: index)
        .handle(json.dumps({"method": "getTSIGKey", "parameters": {"name": "xfr.example.org."}}))
        .startswith('{"result":false')
    )  # no data key: no secret


def powerdns_lookup(qname: str, qtype: str = "ANY", remote_ip: str = "127.0.0.1", zone_id: int = 3) -> bytes:
    """A lookup exactly as PowerDNS 4.7 writes it (json11: sorted keys, ": " and ", ")."""
    local = "0.0.0.0" if remote_ip == "0.0.0.0" else "192.0.2.53"
    real = "0.0.0.0/0" if remote_ip == "0.0.0.0" else remote_ip + ("/128" if ":" in remote_ip else "/32")
    params = {"local": local, "qname": qname, "qtype": qtype, "real-remote": real, "remote": remote_ip}
    params["zone-id"] = zone_id
    return json.dumps({"method": "lookup", "parameters": params}, sort_keys=True).encode()


@pytest.mark.parametrize(
    "message",
    [powerdns_lookup("Home.dyn.example.org."), powerdns_lookup("dyn.example.org.", remote_ip="0.0.0.0", zone_id=-1),
     powerdns_lookup("home.dyn.example.org.", "AAAA", "2001:db8::5"), powerdns_lookup("nope.dyn.example.org."),
     powerdns_lookup("www.example.com."), powerdns_lookup("*.dyn.example.org."),
     powerdns_lookup("h\\032.dyn.example.org.")],
)  # fmt: skip
def test_remote_plain_lookups_read_without_json_parser_answer_the_same(message: bytes) -> None:
    """PowerDNS's lookups are read with a pattern; the answer is the one the JSON path gives."""
    assert message.startswith(remote.LOOKUP_PREFIX)
    assert (remote._LOOKUP.fullmatch(message) is None) == (b"\\" in message)  # escapes take the JSON path
    h = remote.RemoteHandler(lambda: INDEX)
    assert h.handle(message) == h.handle(message.decode())  # a str always takes the JSON path
    # The I/O loops' path in one step: the same answer, or nothing where the pattern does not read it.
    answer = h.query(message + b"\n")
    assert answer is None if b"\\" in message else answer == h.handle(message).encode() + b"\n"


@pytest.mark.parametrize(
    "request_",
    [powerdns_lookup("home.dyn.example.org."),  # no newline yet
     powerdns_lookup("home.dyn.example.org.") + b"\n" + powerdns_lookup("home.dyn.example.org.") + b"\n",
     powerdns_lookup("home.dyn.example.org.") + b"\r\n", b'{"method": "initialize", "parameters": {}}\n',
     b'{"method":"lookup","parameters":{"qname":"home.dyn.example.org.","qtype":"A"}}\n', b"\n", b""],
)  # fmt: skip
def test_remote_query_in_one_step_leaves_everything_else_to_handle(request_: bytes) -> None:
    assert remote.RemoteHandler(lambda: INDEX).query(request_) is None
    lookup = powerdns_lookup("home.dyn.example.org.") + b"\n"
    assert remote.RemoteHandler(lambda: None).query(lookup) is None  # not loaded: handle answers false


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='abcXYZ09-_.*\\"', min_size=1, max_size=40), st.sampled_from(["ANY", "A", "SOA", "TXT"]))
def test_fuzz_remote_plain_lookup_matches_json_path(name: str, qtype: str) -> None:
    h = remote.RemoteHandler(lambda: INDEX)
    message = powerdns_lookup(name + ".dyn.example.org.", qtype)
    assert h.handle(message) == h.handle(message.decode())
    answer = h.query(message + b"\n")
    assert answer is None or answer == h.handle(message).encode() + b"\n"


def test_remote_near_plain_messages_take_the_json_path() -> None:
    h = remote.RemoteHandler(lambda: INDEX)
    truncated = powerdns_lookup("home.dyn.example.org.")[:-1]
    assert json.loads(h.handle(truncated))["result"] is False  # bad JSON, not a lookup
    extra = powerdns_lookup("home.dyn.example.org.")[:-2] + b', "x": 1}}'
    assert json.loads(h.handle(extra))["result"][0]["content"] == "192.0.2.1"


class Source:
    generation = 0


def test_response_cache_hits_counts_and_generations() -> None:
    source, counter, calls = Source(), QueryCounter(), []
    h = remote.RemoteHandler(lambda: INDEX)
    cache = ResponseCache(source, counter)
    h.on_query = cache.note

    def respond(line: bytes) -> bytes:
        calls.append(line)
        return h.handle(line).encode() + b"\n"

    cached = cache.wrap(respond, remote.LOOKUP_PREFIX)
    home, foreign = powerdns_lookup("home.dyn.example.org."), powerdns_lookup("www.example.com.")
    first = cached(home)
    assert cached(home) == first and len(calls) == 1  # the second answer came from the cache
    cached(foreign)
    cached(foreign)
    assert counter.counts == {("ANY", "answer"): 2, ("ANY", "foreign"): 2}  # hits are counted like lookups
    compact = b'{"method":"lookup","parameters":{"qname":"home.dyn.example.org.","qtype":"A"}}'
    assert json.loads(cached(compact))["result"][0]["content"] == "192.0.2.1"
    assert counter.counts[("A", "answer")] == 1  # not PowerDNS's layout: answered and counted, not cached
    cached(compact)
    assert calls.count(compact) == 2 and counter.counts[("A", "answer")] == 2
    source.generation += 1  # a change was applied: every answer is computed again
    assert cached(home) == first and calls.count(home) == 2
    # Only lookups are cached, and never a failure (it may not repeat, and is logged each time).
    init = b'{"method": "initialize", "parameters": {}}'
    cached(init), cached(init)
    bad = remote.LOOKUP_PREFIX + b'"parameters": 5}'
    assert json.loads(cached(bad))["result"] is False and json.loads(cached(bad))["result"] is False
    assert calls.count(init) == 2 and calls.count(bad) == 2


def test_response_cache_drops_answers_of_an_unloaded_index() -> None:
    source, loaded = Source(), []
    session = pipe.PipeSession(lambda: INDEX if loaded else None)
    cache = ResponseCache(source)
    session.on_query = cache.note
    cached = cache.wrap(lambda line: session.handle(line.decode()).encode(), b"Q\t")
    cached(b"HELO\t1")
    assert cached(Q[1].encode()).endswith(b"FAIL\n")
    loaded.append(True)  # loading bumps the generation too, but a FAIL is never kept anyway
    assert cached(Q[1].encode()).endswith(b"END\n")


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


@contextlib.contextmanager
def stream_server(
    respond: Responder, max_line: int, ask: Quick | None, progress: StreamProgress | None = None
) -> Iterator[tuple[int, int]]:
    """``serve_stream`` on a thread between two real pipes; yields the client's ends (write, read). At the
    end the client's write end is closed, and the loop must have ended with it."""
    to_server, from_client = os.pipe()
    from_server, to_client = os.pipe()
    args = (respond, b"FAIL\n", max_line, None, b"", to_server, to_client, ask, progress)
    server = threading.Thread(target=serve_stream, args=args, daemon=True)
    server.start()
    try:
        yield from_client, from_server
    finally:
        os.close(from_client)
        server.join(5)
        for fd in (to_server, from_server, to_client):
            os.close(fd)
    assert not server.is_alive()


def test_stream_answers_a_repeated_request_from_the_cache_but_never_the_end_of_a_split_one() -> None:
    source, counter, calls = Source(), QueryCounter(), []
    cache = ResponseCache(source, counter)

    def respond(line: bytes) -> bytes:
        calls.append(line)
        cache.note("A", 1)
        return b"ANSWER " + line + b"\n"

    with stream_server(cache.wrap(respond, b"Q\t"), 100, cache.hit) as (from_client, from_server):

        def ask(data: bytes) -> bytes:
            os.write(from_client, data)
            return os.read(from_server, 4096)

        assert ask(b"Q\ta\n") == b"ANSWER Q\ta\n"
        assert ask(b"Q\ta\n") == b"ANSWER Q\ta\n" and calls == [b"Q\ta"]  # from the cache
        assert counter.counts == {("A", "answer"): 2}
        # The start of a line, then data that alone would be a cached request: one line, answered anew.
        os.write(from_client, b"Q\tb")
        time.sleep(0.2)  # let the server read the start on its own
        assert ask(b"Q\ta\n") == b"ANSWER Q\tbQ\ta\n" and calls[-1] == b"Q\tbQ\ta"
        assert ask(b"Q\ta\n") == b"ANSWER Q\ta\n" and len(calls) == 2
        source.generation += 1  # a change was applied: computed again
        assert ask(b"Q\ta\n") == b"ANSWER Q\ta\n" and len(calls) == 3


@pytest.mark.parametrize("counting", [False, True])
def test_stream_answers_queries_in_one_step_and_keeps_them(counting: bool) -> None:
    source, counter, loaded = Source(), QueryCounter(), [True]
    cache = ResponseCache(source, counter if counting else None)
    s = pipe.PipeSession(lambda: INDEX if loaded else None, on_query=cache.on_query)
    handled: list[str] = []
    handle = s.handle

    def recorded(line: str) -> str:
        handled.append(line)
        return handle(line)

    s.handle = recorded  # type: ignore[method-assign]
    respond, ask = _pipe_responder(s, cache, clear_on_helo=True)
    query, expected = Q[3].encode() + b"\n", session(5).handle(Q[3]).encode()
    with stream_server(respond, 4096, ask) as (from_client, from_server):

        def ask_server(data: bytes) -> bytes:
            os.write(from_client, data)
            answer = b""
            while not answer.endswith((b"END\n", b"FAIL\n")) and not answer.startswith(b"OK"):
                answer += os.read(from_server, 4096)
            return answer

        assert ask_server(b"HELO\t5\n").startswith(b"OK\t") and handled == ["HELO\t5"]
        assert ask_server(query) == expected and len(handled) == 1 and cache.entries[query] == expected
        assert ask_server(query) == expected  # from the cache
        os.write(from_client, query[:10])  # half a line: never answered on its own
        time.sleep(0.2)
        assert ask_server(query[10:]) == expected and len(handled) == 1  # one answer to the whole line
        assert ask_server(query + query).endswith(expected + expected) and len(handled) == 1  # two at once
        source.generation += 1
        loaded.clear()  # nothing to answer from: handle FAILs (PowerDNS retries), nothing kept
        assert ask_server(query).endswith(b"FAIL\n") and not cache.entries and len(handled) == 2
        loaded.append(True)
        assert ask_server(query) == expected and len(handled) == 2
        assert counter.counts == ({("A", "answer"): 6} if counting else {})
        assert ask_server(b"HELO\t2\n").startswith(b"OK\t") and not cache.entries  # the layout may change
        assert ask_server(query).endswith(b"FAIL\n")  # another ABI's field count


def test_watchdog_ends_only_an_answer_that_takes_too_long() -> None:
    """serve_stream's progress, watched: waiting for requests however long, and answering one after the
    other, is fine; one answer that takes longer than the timeout calls ``end`` once, with how long."""
    release, ended = threading.Event(), []
    progress = StreamProgress()

    def respond(line: bytes) -> bytes:
        if line == b"slow":
            release.wait(10)
        if line == b"long":
            return b"x" * 4_000_000 + b"\n"
        return line + b"\n"

    dog = Watchdog(progress, 0.5, ended.append).start()
    try:
        with stream_server(respond, 100, None, progress) as (from_client, from_server):
            support.wait_until(lambda: progress.waiting, 5, 0.01)
            time.sleep(1.0)  # idle for longer than the timeout
            for n in range(80):  # busy, but answering: 0.8 s of quick answers
                os.write(from_client, b"%d\n" % n)
                assert os.read(from_server, 100) == b"%d\n" % n
                time.sleep(0.01)
            assert not ended and progress.waiting
            # A long answer read slowly (1.2 s in all): progress with each piece written.
            os.write(from_client, b"long\n")
            received = b""
            while not received.endswith(b"\n"):
                received += os.read(from_server, 65536)
                time.sleep(0.02)
            assert len(received) == 4_000_001 and not ended
            os.write(from_client, b"slow\n")
            support.wait_until(lambda: ended, 5, 0.01, what="the watchdog")
            release.set()
            assert os.read(from_server, 100) == b"slow\n"
        assert len(ended) == 1 and ended[0] >= 0.5
    finally:
        dog.stop()


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
