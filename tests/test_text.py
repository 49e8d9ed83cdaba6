"""Text analysis requirements from the core issue: quotes, abbreviations, stopwords."""

from __future__ import annotations

import subprocess
import sys

import pytest

from natoqa import text

from .conftest import ROOT, SEED_DOC


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


def test_the_bare_sentence_splitter_is_punkts_without_the_regex_engines_time_limit():
    # Punkt through nltk.redos searched each passage under a 5 s limit: a
    # passage of some megabytes raised TimeoutError and could never be
    # indexed. With the stdlib's re (the regex engine never loaded) the
    # sentences must be real Punkt's, span for span.
    code = (
        "import sys; from natoqa import _nltk, text\n"
        f"doc = open({str(SEED_DOC)!r}, encoding='utf-8').read()\n"
        "doc += ' Mr. Smith met Dr. Jones at 5 p.m. on Jan. 3. He said: \"Go!\" Then (he left). U.S. troops... went.'\n"
        "bare = list(_nltk.sentence_splitter().span_tokenize(doc))\n"
        "print('regex' in sys.modules, len(bare))\n"
        "from nltk.tokenize import punkt\n"
        "params = punkt.PunktParameters(); params.abbrev_types = set(_nltk.ABBREVIATIONS)\n"
        "print(bare == list(punkt.PunktSentenceTokenizer(params).span_tokenize(doc)))\n"
    )
    loaded, count, same = _bare_against_real(code)
    assert loaded == "False" and int(count) > 30
    assert same == "True"


def _bare_against_real(code: str) -> tuple[str, str, str]:
    """Run code, which prints whether the regex engine was loaded and a
    count on one line, then whether the bare piece equals nltk's own."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.split("\n")[:2]
    loaded, count = first.split()[:2]
    return loaded, count, second


def test_the_bare_stemmer_is_nltks_and_leaves_the_regex_engine_unloaded():
    # The stemmer is loaded with a stand-in for nltk.redos (whose import
    # loads the third-party regex engine): its English stems must be the
    # real module's, word for word.
    code = (
        "import sys; from natoqa import _nltk, text\n"
        "words = [line.split()[0] for line in text.data_text('wordfreq.txt').splitlines()[20::9] if line[:1] != '#']\n"
        "bare = [_nltk.stemmer().stem(w) for w in words]\n"
        "print('regex' in sys.modules, len(words))\n"
        "from nltk.stem.snowball import SnowballStemmer\n"
        "real = SnowballStemmer('english')\n"
        "print(bare == [real.stem(w) for w in words])\n"
    )
    loaded, count, same = _bare_against_real(code)
    assert loaded == "False" and int(count) > 1_000
    assert same == "True"


def test_combining_marks_stay_inside_words_and_meet_their_composed_form():
    # `\\w` leaves combining marks out: a decomposed "ü" cut "Müller" in two,
    # and a Hindi word fell apart at each vowel sign.
    decomposed = "Anna Mu\u0308ller approved the \u0939\u093f\u0928\u094d\u0926\u0940 plan"
    tokens = text.tokens_with_spans(decomposed)
    assert [decomposed[a:b] for _, a, b in tokens] == [
        "Anna",
        "Mu\u0308ller",
        "approved",
        "the",
        "\u0939\u093f\u0928\u094d\u0926\u0940",
        "plan",
    ]
    assert tokens[1][0] == "m\u00fcller"  # composed: a question's "Müller" meets it
    assert text.terms("Müller") == text.terms("Mu\u0308ller")
    # But not in scripts written without spaces, where a whole phrase would
    # be one token a question must match whole (a Thai question found
    # nothing), nor a variation selector, a token of its own after ❤️.
    thai = "\u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e\u0e21\u0e2b\u0e32\u0e19\u0e04\u0e23"
    assert len(text.terms(thai)) > 1
    assert text.terms("I \u2764\ufe0f NATO") == ["nato"]


def test_the_shipped_marks_are_this_unicode_databases():
    # src/natoqa/_marks.py is written by tools/build_marks.py; on the
    # Python whose Unicode version it names, it must be what that writes.
    import importlib.util
    import unicodedata

    from natoqa import _marks

    if unicodedata.unidata_version != _marks.UNICODE_VERSION:
        pytest.skip(f"written from Unicode {_marks.UNICODE_VERSION}, this Python has {unicodedata.unidata_version}")
    if not (ROOT / "tools").is_dir():
        pytest.skip("no tools/ (an sdist)")
    spec = importlib.util.spec_from_file_location("build_marks", ROOT / "tools" / "build_marks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert (ROOT / "src" / "natoqa" / "_marks.py").read_text(encoding="utf-8") == build.source()
