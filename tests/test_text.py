"""Text analysis requirements from the core issue: quotes, abbreviations, stopwords."""

from __future__ import annotations

import subprocess
import sys

from natoqa import text


def test_typographic_apostrophes_match_ascii():
    assert text.terms("It's founding treaty") == text.terms("It’s founding treaty")
    assert text.terms("“Open Door”") == text.terms('"Open Door"')


def test_stems_and_stopwords():
    assert text.terms("The troops are deploying") == ["troop", "deploy"]
    assert "the" in text.stopwords() and "troops" not in text.stopwords()


def test_numbers_fold_thousands_separators():
    assert text.terms("5,000 troops") == text.terms("5000 troops")


def test_sentences_do_not_break_at_abbreviations():
    passage = "The U.S. has started to deploy troops. Gen. Smith agreed with Mr. Jones. Done."
    spans = text.sentence_spans(passage)
    assert [passage[a:b] for a, b in spans] == [
        "The U.S. has started to deploy troops.",
        "Gen. Smith agreed with Mr. Jones.",
        "Done.",
    ]


def test_no_download_and_no_full_nltk_import():
    # The stemmer and Punkt load without nltk/__init__ (and without data).
    code = (
        "import sys; from natoqa import text; text.terms('deploying troops'); "
        "text.sentence_spans('One. Two.'); print('nltk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
