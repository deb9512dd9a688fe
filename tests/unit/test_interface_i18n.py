"""The interface's gettext catalogs: current with the sources, compiled, and chosen per request."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

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
    compiled = io.BytesIO()
    babel_mofile.write_mo(compiled, catalog)
    assert PO.with_suffix(".mo").read_bytes() == compiled.getvalue(), "run scripts/interface-catalogs.py"


def test_accept_language() -> None:
    assert i18n.parse_accept_language("fr-CH, fr;q=0.9, de;q=0.95, *;q=0.5") == ["fr", "de", "fr"]
    assert i18n.parse_accept_language("") == []
    assert i18n.translations("de").gettext("Log in") == "Anmelden"
