"""Cache keys carry the verifier's code version: it follows the verifier's module and the
project modules it imports, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_server import registry

version_of = registry._source_version  # uncached: the files change below


@pytest.fixture()
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "vpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "helper.py").write_text("FACTOR = 1\n")
    (root / "unrelated.py").write_text("NAME = 'x'\n")
    (root / "verifier.py").write_text(
        "import json\nfrom vpkg import helper\n\ndef compare():\n    return helper.FACTOR\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return root


def test_a_changed_helper_changes_the_version(package: Path) -> None:
    before = version_of("vpkg.verifier")
    assert version_of("vpkg.verifier") == before  # deterministic
    (package / "helper.py").write_text("FACTOR = 2\n")
    assert version_of("vpkg.verifier") != before


def test_modules_it_does_not_import_do_not_count(package: Path) -> None:
    before = version_of("vpkg.verifier")
    (package / "unrelated.py").write_text("NAME = 'y'\n")
    assert version_of("vpkg.verifier") == before


def test_an_explicit_version_wins() -> None:
    spec = registry.VerifierSpec("x", "reward_server.verifiers.exact", "", "", version="7")
    assert spec.code_version == "7"
    implicit = registry.VerifierSpec("x", "reward_server.verifiers.exact", "", "")
    assert implicit.code_version == registry.get("any").code_version != "7"
