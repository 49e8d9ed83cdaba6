"""Review of the ranking changes (session 9): the bugs it found, each pinned by a test."""

from __future__ import annotations

from natoqa import answer as answermod
from natoqa import store
from natoqa.corpus import load_corpus

from .conftest import make_corpus


def _index(tmp_path):
    root = make_corpus(
        tmp_path / "c",
        {"uk.txt": "Britain\n\nBritain left the union in 2020. The UK has four nations.\n\nFrance sent planes.\n"},
    )
    return store.load_index(load_corpus(root), use_cache=False)


def test_a_misspelt_word_before_a_two_word_name_is_answered(tmp_path):
    index = _index(tmp_path)
    result = answermod.ask(index, "Is Britan the same as Great Britain?")
    assert result.answered


def test_a_repeated_two_word_name_counts_its_synonyms_once(tmp_path):
    index = _index(tmp_path)
    once = answermod.analyse(index, "Did United Kingdom troops leave?")
    twice = answermod.analyse(index, "Did United Kingdom troops leave the United Kingdom?")
    assert once.related == twice.related
    assert once.related_words == twice.related_words
