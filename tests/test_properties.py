"""Invariants over generated documents: passages are their lines; quotes are verbatim."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natoqa.answer import ask
from natoqa.corpus import load_corpus
from natoqa.index import Index

from .conftest import make_corpus

WORDS = ["NATO", "troops", "Poland", "U.S.", "Gen.", "deploy", "it’s", "it's", "5,000", "sea", "café", "Ωmega", "ok"]
word = st.one_of(
    st.sampled_from(WORDS),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8),
)
sentence = st.lists(word, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + ".")
line = st.one_of(st.lists(sentence, min_size=1, max_size=3).map(" ".join), st.just(""), st.just("   "))
line_end = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def documents(draw):
    lines = draw(st.lists(line, min_size=1, max_size=12))
    ending = draw(line_end)
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    if not any(ln.strip() for ln in lines):
        text = "fallback text here." + ending + text
    return text


settings.register_profile(
    "natoqa", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("natoqa")


@given(text=documents())
def test_passage_lines_equal_passage_text(tmp_path_factory, text):
    root = make_corpus(tmp_path_factory.mktemp("c"), {"doc.txt": text})
    corpus = load_corpus(root)
    [doc] = corpus.documents
    for p in doc.passages:
        assert p.text == "\n".join(doc.lines[p.start_line - 1 : p.end_line])
        assert all(ln.strip() for ln in doc.lines[p.start_line - 1 : p.end_line])
    # Every non-blank line belongs to exactly one passage; blank lines to none.
    for number, ln in enumerate(doc.lines, 1):
        holders = [p for p in doc.passages if p.start_line <= number <= p.end_line]
        assert len(holders) == (1 if ln.strip() else 0)


@given(text=documents(), question=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join))
def test_every_quote_is_verbatim_at_its_coordinates(tmp_path_factory, text, question):
    root = make_corpus(tmp_path_factory.mktemp("c"), {"doc.txt": text})
    corpus = load_corpus(root)
    index = Index(corpus)
    result = ask(index, question, top=3)
    [doc] = corpus.documents
    for answer in result.answers:
        q = answer.quote
        assert q.text
        assert doc.text_at(q.start_line, q.start_col, q.end_line, q.end_col) == q.text
        assert answer.passage.start_line <= q.start_line <= q.end_line <= answer.passage.end_line
        assert q.text in answer.passage.text
        short = answer.answer
        if short is not None:
            assert doc.text_at(short.start_line, short.start_col, short.end_line, short.end_col) == short.text
            assert short.text in q.text
