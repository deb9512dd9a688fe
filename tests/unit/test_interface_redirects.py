"""Redirect targets from the request: only a path on this site passes, whatever browsers make of the rest."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddserver.interface.routes import safe_next
from tests import whatwg
from tests.whatwg import LEAVING, LOCAL, PIECES, REFUSED

DEFAULT = "/default"


@pytest.mark.parametrize("value", LEAVING)
def test_values_that_leave_the_site_go_to_the_default(value: str) -> None:
    assert whatwg.origin(value) != whatwg.BASE
    assert safe_next(value, DEFAULT) == DEFAULT


@pytest.mark.parametrize("value", REFUSED)
def test_whitespace_controls_and_encoded_slashes_are_refused(value: str) -> None:
    assert safe_next(value, DEFAULT) == DEFAULT


@pytest.mark.parametrize("value", LOCAL)
def test_local_paths_are_kept(value: str) -> None:
    assert whatwg.origin(value) == whatwg.BASE
    assert safe_next(value, DEFAULT) == value


def test_the_model_sends_the_known_tricks_elsewhere() -> None:
    # The model itself, on the values the rule exists for (Chromium agrees: tests/e2e/test_redirect_origins.py).
    assert whatwg.origin("/\t/evil.example") == ("https", "evil.example")
    assert whatwg.origin("/\\evil.example") == ("https", "evil.example")
    assert whatwg.origin(" \\/evil.example") == ("https", "evil.example")
    assert whatwg.origin("https:/\\user@evil.example:8443/x") == ("https", "evil.example")
    assert whatwg.origin("https:evil.example") == whatwg.BASE
    assert whatwg.origin("http:evil.example") == ("http", "evil.example")
    assert whatwg.origin("java\tscript:alert(1)") is None


#: Characters that change how browsers parse a URL, and their percent-encoded forms.
TRICKY = "/\\\t\n\r \x00\x0b\x1f\x7f\u3000\u2028\u200b:@.?#%25%2F%2f%5C%5c%09%0A%0d%00eE12x"
tricky_text = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


def test_every_combination_of_three_pieces() -> None:
    accepted = 0
    for value in whatwg.combinations(PIECES, 3):
        target = safe_next(value, DEFAULT)
        if target == value:
            accepted += 1
            assert whatwg.origin(target) == whatwg.BASE, repr(value)
            assert whatwg.origin(_decoded(target)) == whatwg.BASE, repr(value)
    assert accepted > 1000  # the rule lets paths through, not only refuses


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(st.one_of(tricky_text, st.text(max_size=40), st.text(alphabet=TRICKY, max_size=20)))
def test_every_accepted_value_keeps_the_origin(value: str) -> None:
    target = safe_next(value, DEFAULT)
    assert target in (value, DEFAULT)
    # What the browser would do with the target, and with its percent-decoded forms (a proxy or a later
    # redirect may decode it once more).
    assert whatwg.origin(target) == whatwg.BASE
    assert whatwg.origin(_decoded(target)) == whatwg.BASE
    assert target.isascii() and target.isprintable() and " " not in target


def _decoded(value: str) -> str:
    while (decoded := urllib.parse.unquote(value)) != value:
        value = decoded
    return value
