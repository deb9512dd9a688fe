"""The interface's gettext catalogs: current with the sources, compiled, and chosen per request."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ddserver.interface import i18n

babel_pofile = pytest.importorskip("babel.messages.pofile")
babel_mofile = pytest.importorskip("babel.messages.mofile")
ROOT = Path(__file__).resolve().parents[2]
PO = i18n.LOCALE_DIR / "de" / "LC_MESSAGES" / "ddserver.po"


def test_german_catalog_has_every_message_and_its_mo_is_compiled(tmp_path: Path) -> None:
    pot = tmp_path / "ddserver.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(i18n.LOCALE_DIR / "babel.cfg"),
            "-k",
            "gettext",
            "-k",
            "_",
            "-o",
            str(pot),
            "--no-location",
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    wanted = {m.id for m in babel_pofile.read_po(pot.open("rb")) if m.id}
    catalog = babel_pofile.read_po(PO.open("rb"), locale="de")
    have = {m.id for m in catalog if m.id}
    assert wanted <= have, f"run scripts/interface-catalogs.py: missing {sorted(map(str, wanted - have))[:5]}"
    # Every message is translated (a plural in each of its forms), and none is left fuzzy.
    untranslated = [m.id for m in catalog if m.id and (not all(m.string) if isinstance(m.id, tuple) else not m.string)]
    assert not untranslated, f"{len(untranslated)} German messages untranslated, such as {untranslated[:3]}"
    assert not [m.id for m in catalog if m.id and m.fuzzy]
    # A translation keeps the placeholders of its message.
    for message in catalog:
        if message.id and message.python_format:
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted_names = set(re.findall(r"%\((\w+)\)s", ids[-1]))
            for text in strings:
                assert set(re.findall(r"%\((\w+)\)s", text)) == wanted_names, (message.id, text)
    # The committed .mo holds exactly the .po's translations. Compared message by message, not byte by byte:
    # the header names the Babel version that compiled it, which changes with every Babel release.
    with PO.with_suffix(".mo").open("rb") as mo:
        compiled = babel_mofile.read_mo(mo)

    def translations(messages: Iterable[Any]) -> dict[Any, Any]:
        # Plural forms come as tuples from the .po and as lists from the .mo.
        def plain(value: Any) -> Any:
            return tuple(value) if isinstance(value, list | tuple) else value

        return {plain(m.id): plain(m.string) for m in messages if m.id and not m.fuzzy}

    assert translations(compiled) == translations(catalog), "run scripts/interface-catalogs.py"


def test_accept_language() -> None:
    assert i18n.parse_accept_language("fr-CH, fr;q=0.9, de;q=0.95, *;q=0.5") == ["fr", "de", "fr"]
    assert i18n.parse_accept_language("") == []
    assert i18n.translations("de").gettext("Log in") == "Anmelden"
    assert i18n.translations("de").gettext("Primary server") == "Primärer Server"
    assert (
        i18n.translations("de")
        .ngettext("%(num)s host, no limit.", "%(num)s hosts, no limit.", 2)
        .startswith("%(num)s Hosts")
    )
