"""The short answer's pieces: the verb list, the asked-for noun, noun chunks,
and the phrase picked inside a one-sentence quote."""

from __future__ import annotations

import pytest

from natoqa import answer as answermod
from natoqa import shortanswer
from natoqa.corpus import load_corpus
from natoqa.index import Index

from .conftest import SEEDS, make_corpus


@pytest.mark.parametrize(
    ("word", "is_verb"),
    [
        ("introduced", True),
        ("began", True),
        ("accidentally", True),
        ("however", True),
        ("people", False),
        ("sea", False),
        ("biodiversity", False),
    ],
)
def test_verbs_are_the_words_used_mostly_as_verbs_or_adverbs(word, is_verb):
    assert (word in shortanswer.verbs()) is is_verb


@pytest.mark.parametrize(
    ("question", "focus"),
    [
        ("What sea were ctenophores introduced into?", "sea"),
        ("What kind of disorders are autoimmune?", "disord"),
        ("Which river flows through Bonn?", "river"),
        ("What is the capital of Poland?", None),
        ("Who founded the city?", None),
    ],
)
def test_focus_word_is_the_noun_a_what_question_asks_for(question, focus):
    words = question.lower().rstrip("?").split()
    assert shortanswer.focus_word(words) == focus


def chunk_texts(sentence: str) -> list[str]:
    quote = shortanswer._Quote(sentence, 0, len(sentence))
    chunks = shortanswer._chunks(quote.words, quote.breaks, quote.joined)
    return [sentence[quote.starts[a] : quote.ends[b]] for a, b, _ in chunks]


def test_chunks_end_at_verbs_and_join_over_of():
    chunks = chunk_texts("Ctenophores were accidentally introduced into the Black Sea after the loss of biodiversity.")
    assert "Black Sea" in chunks
    assert "loss of biodiversity" in chunks
    assert not any("introduced" in c for c in chunks)


def test_hyphenated_compounds_stay_whole():
    assert "apicomplexan-related diseases" in chunk_texts("Drugs cure apicomplexan-related diseases.")


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    text = (
        "# Sea life\n\n"
        "In the 1980s ctenophores were accidentally introduced into the Black Sea by ships.\n\n"
        "# Rivers\n\n"
        "The Alpine Rhine begins in the most western part of the Swiss canton of Graubunden.\n\n"
        "# Football\n\n"
        "However, the ball was recovered by Ward, who returned it five yards.\n"
    )
    root = make_corpus(tmp_path_factory.mktemp("c"), {"a.md": text})
    return Index(load_corpus(root))


@pytest.mark.parametrize(
    ("question", "short"),
    [
        # The noun the question asks for stays in the answer.
        ("What sea were ctenophores accidentally introduced into?", "Black Sea"),
        # A name that only modifies a noun ("Swiss", here also a relative of
        # "Alpine") yields to the noun phrase.
        ("Where does the Alpine Rhine begin?", "canton of Graubunden"),
        # A capital at a clause start makes no name.
        ("Who recovered the ball?", "Ward"),
    ],
)
def test_short_answer_in_a_one_sentence_quote(tiny_index, question, short):
    result = answermod.ask(tiny_index, question)
    assert result.answered
    assert result.answers[0].answer is not None
    assert result.answers[0].answer.text == short


@pytest.fixture(scope="module")
def seed_index():
    return Index(load_corpus(SEEDS))


def test_index_terms_are_the_quote_stems(seed_index):
    """A whole-sentence quote takes its new words' stems from the index's
    sentence terms (shortanswer._index_stems): they must be the stems it
    would compute itself, token for token."""
    index = seed_index
    compared = total = 0
    for p in range(len(index.corpus.passages)):
        text = index.corpus.passages[p].text
        sentences = index.sentences[p]
        for first in range(len(sentences)):
            for last in (first, first + 1)[: len(sentences) - first]:
                start, end = sentences[first].start, sentences[last].end
                terms = [t for s in sentences[first : last + 1] for t in s.terms]
                shortanswer._ANALYSED.clear()
                _, _, raws, analyses = shortanswer._spans(text, start, end)
                stems = shortanswer._index_stems(terms, [shortanswer._word(raw) for raw in raws])
                compared += any(stems)
                total += 1
                for stem, analysed in zip(stems, analyses, strict=True):
                    assert stem is None or stem == analysed[1]
    assert compared > total / 2  # most quotes do take the index's stems
