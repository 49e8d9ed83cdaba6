"""Bugs found reviewing q8 (the numpy first stage, the deeper ranking, the
short-answer rewrite), pinned by tests."""

from __future__ import annotations

from dataclasses import asdict

from natoqa import answer as answermod
from natoqa import store
from natoqa.answer import analyse, ask, rank
from natoqa.corpus import load_corpus

from .conftest import make_corpus


def arrays(monkeypatch, on: bool):
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0 if on else 10**12)
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", -1)


def test_arrays_survive_an_empty_last_document_with_a_matching_title(tmp_path, monkeypatch):
    root = make_corpus(
        tmp_path / "c",
        {"a.txt": "Harbour one has cranes.\n\nHarbour two has ships.\n", "z.txt": ""},
        index="# T\n\n- [Harbours](a.txt)\n- [Cranes](z.txt)\n",
    )
    index = store.load_index(load_corpus(root), use_cache=False)
    question = "Which harbour has cranes?"
    arrays(monkeypatch, False)
    plain = ask(index, question)
    arrays(monkeypatch, True)
    assert ask(index, question) == plain


def test_rank_with_exact_matches_rank_without_it_past_the_candidates(tmp_path):
    docs = {
        f"d{d}.txt": "\n\n".join(
            f"Harbour {d}{i} has {i % 5 + 1} cranes and {i % 3 + 2} ships in port {d}." for i in range(10)
        )
        + "\n"
        for d in range(4)
    }
    index = store.load_index(load_corpus(make_corpus(tmp_path / "c", docs)), use_cache=False)
    q = analyse(index, "How many cranes has the harbour in port 2?")
    full = [asdict(c) for c in rank(index, q, 20)]
    assert len(full) == 20
    exact = [asdict(c) for c in rank(index, q, 20, exact=3)]
    assert exact[:3] == full[:3]
