"""``ddserver host related``: add, list, edit and remove a host's related names, with one-line errors and
the exit codes of the other commands; related names refuse the commands meant for hosts."""

from __future__ import annotations

import pytest

from ddserver.store import hosts
from tests.unit.test_cli import ready, run  # noqa: F401  (fixtures)

HOME = "home.dyn.example.org"
NAS = f"nas.{HOME}"


def test_related_names_through_the_command(ready, db):  # type: ignore[no-untyped-def]  # noqa: F811
    assert ready("host", "add", "alice", HOME)[0] == 0
    assert ready("host", "set-address", HOME, "192.0.2.1", "2001:db8:1:2::1")[0] == 0
    code, out, _ = ready("host", "related", "add", HOME, NAS, "--ifid", "::1:2:3:4")
    assert code == 0 and out == f"{NAS}\t::1:2:3:4/64\t-\t-\t2001:db8:1:2:1:2:3:4\n"
    code, out, _ = ready(
        "host", "related", "add", HOME, "tv.dyn.example.org", "--ifid", "5", "--prefix-len", "56", "--ipv4"
    )
    assert code == 0 and out == "tv.dyn.example.org\t::5/56\tipv4\t192.0.2.1\t2001:db8:1::5\n"
    # The main host's address change brings them along; the host list shows main hosts only.
    assert ready("host", "set-address", HOME, "2001:db8:9:9::1")[0] == 0
    code, out, _ = ready("host", "related", "list", HOME)
    assert out.splitlines() == [
        f"{NAS}\t::1:2:3:4/64\t-\t-\t2001:db8:9:9:1:2:3:4",
        "tv.dyn.example.org\t::5/56\tipv4\t192.0.2.1\t2001:db8:9::5",
    ]
    assert [line.split("\t")[0] for line in ready("host", "list")[1].splitlines()] == [HOME]
    code, out, _ = ready("host", "related", "edit", HOME, NAS, "--ifid", "::7", "--ipv4")
    assert code == 0 and out == f"{NAS}\t::7/64\tipv4\t192.0.2.1\t2001:db8:9:9::7\n"
    assert ready("host", "related", "remove", HOME, NAS) == (0, f"removed {NAS}\n", "")
    assert [h.name for h in hosts.search(db)[0]] == [HOME]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("host", "related", "add", HOME, NAS, "--ifid", "nope"), "'nope' is not an interface identifier"),
        (("host", "related", "add", HOME, NAS, "--ifid", "1::1"), "longer than the 64 bits"),
        (("host", "related", "add", HOME, NAS, "--ifid", "::1", "--prefix-len", "130"), "from 8 to 127"),
        (("host", "related", "add", HOME, "nas.example.com", "--ifid", "::1"), "not in the zone dyn.example.org"),
        (("host", "related", "add", HOME, f"a.b.{HOME}", "--ifid", "::1"), "must be one label below"),
        (("host", "related", "add", HOME, HOME, "--ifid", "::1"), "is taken"),
        (("host", "related", "add", HOME, "tv", "--ifid", "::1"), f"give the related name in full, such as tv.{HOME}"),
        (("host", "related", "add", "nope.dyn.example.org", NAS, "--ifid", "::1"), "no host nope.dyn.example.org"),
        (("host", "related", "add", NAS, f"x.{HOME}", "--ifid", "::1"), "is a related name itself"),
        (("host", "related", "remove", HOME, "tv.dyn.example.org"), "is not a related name of"),
        (("host", "set-address", NAS, "2001:db8::5"), f"is a related name of {HOME}"),
        (("host", "edit", NAS, "--ttl", "300"), f"is a related name of {HOME}"),
    ],
)
def test_related_mistakes_give_one_line(ready, args, message):  # type: ignore[no-untyped-def]  # noqa: F811
    ready("host", "add", "alice", HOME)
    assert ready("host", "related", "add", HOME, NAS, "--ifid", "::4")[0] == 0
    code, _, err = ready(*args)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_limit_of_related_names(ready, monkeypatch):  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setenv("DDSERVER_DNS_MAX_RELATED_PER_HOST", "1")
    ready("host", "add", "alice", HOME)
    assert ready("host", "related", "add", HOME, NAS, "--ifid", "::4")[0] == 0
    code, _, err = ready("host", "related", "add", HOME, f"tv.{HOME}", "--ifid", "::5")
    assert code == 1 and "has 1 related names, as many as a host may have" in err
