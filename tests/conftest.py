"""Shared fixtures: the seed corpus, and tiny corpora built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_DOC = SEEDS / "nato-bolsters-eastern-flank.txt"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's environment or writes the user's cache."""
    monkeypatch.delenv("NATOQA_CORPUS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture(autouse=True)
def _no_stems_told(monkeypatch):
    """No test sees the stems a batch in an earlier test told text.stem
    (text.know_stems): a wrong table must fail the test that checks it."""
    from natoqa import text as textmod

    monkeypatch.setattr(textmod, "_KNOWN_STEMS", {})


@pytest.fixture
def runner():
    return CliRunner()


def make_corpus(root: Path, docs: dict[str, str], index: str | None = None) -> Path:
    """A corpus folder: one file per entry of docs, an INDEX.md linking them."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8", newline="")
    if index is None:
        index = "# Test corpus\n\n" + "".join(f"- [{Path(n).stem.title()}]({n})\n" for n in docs)
    (root / "INDEX.md").write_text(index, encoding="utf-8")
    return root


@pytest.fixture
def tiny_corpus(tmp_path):
    return make_corpus(
        tmp_path / "tiny",
        {
            "birds.txt": "Birds\n\nThe albatross has the longest wingspan of any living bird.\nIt glides for hours.\n\n"
            "Penguins cannot fly. They swim in cold southern seas.\n",
            "tools.txt": "Tools\n\nA hammer drives nails. A saw cuts wood.\n",
        },
    )
