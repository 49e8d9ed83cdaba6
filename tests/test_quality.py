"""The pieces of answer quality: question kinds, spelling folding, English
rarity, headings, and short answers that are verbatim at their coordinates."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natoqa import answer as answermod
from natoqa import shortanswer
from natoqa import text as textmod
from natoqa.corpus import load_corpus
from natoqa.index import Index

from .conftest import SEEDS, make_corpus


@pytest.fixture(scope="module")
def seed_index():
    return Index(load_corpus(SEEDS))


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who is the NATO Secretary General?", shortanswer.PERSON),
        ("Whose troops are in Lithuania?", shortanswer.PERSON),
        ("When did Russia invade Ukraine?", shortanswer.DATE),
        ("In what year did Russia invade?", shortanswer.DATE),
        ("Which century saw the Normans arrive?", shortanswer.DATE),
        ("How many troops is the U.S. sending?", shortanswer.NUMBER),
        ("What percentage of its land forces?", shortanswer.NUMBER),
        ("Where did the ministers meet?", shortanswer.PLACE),
        ("What policy does the treaty commit to?", shortanswer.THING),
        ("Is Ukraine a member?", shortanswer.THING),
    ],
)
def test_question_kind(question, kind):
    words = [w for w, _, _ in textmod.tokens_with_spans(question)]
    assert shortanswer.question_kind(words) == kind


@pytest.mark.parametrize(
    ("british", "american"),
    [("defence", "defense"), ("neighbouring", "neighboring"), ("colour", "color"), ("programme", "program")],
)
def test_british_and_american_spellings_meet(british, american):
    assert textmod.terms(british) == textmod.terms(american)


def test_spelling_folding_leaves_other_words_alone():
    assert textmod.american("troops") == "troops"
    assert textmod.terms("Defence ministers") == textmod.terms("defense ministers")


def test_rare_words_tell_more_than_common_ones():
    common, rare, unknown = (textmod.telling(textmod.stem(w)) for w in ("year", "battalion", "zzyzzyva"))
    assert common < rare <= unknown
    assert textmod.telling(textmod.stem("time")) == pytest.approx(max(0.0, textmod.COMMON_ZIPF - 6.29), abs=0.01)


def test_a_title_line_is_a_heading_and_prose_is_not(seed_index):
    assert seed_index.heading[0] is True  # "Doubting Russian exit, NATO looks to bolster its defenses"
    assert not any(seed_index.heading[1:])


def test_where_maps_terms_and_bigrams_to_their_sentences(seed_index):
    p = next(i for i, passage in enumerate(seed_index.corpus.passages) if passage.start_line == 13)
    where = seed_index.where[p]
    assert where[textmod.stem("poland")] == [0, 1]
    assert where["air polic"] == [3]
    assert where["\0number"] == [0]  # "5,000 troops"


def test_an_unknown_word_stands_in_for_a_relative(seed_index):
    q = answermod.analyse(seed_index, "How large is the deployment?")
    assert "deploy" in q.terms  # "deployment" is not in the article; "deploy" is


def test_unknown_words_count_against_confidence(seed_index):
    on = answermod.ask(seed_index, "Which countries are providing jets for air policing?")
    off = answermod.ask(seed_index, "Who won the football World Cup in 2018?")
    assert on.answered and not off.answered


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("How many troops is the U.S. sending to Poland?", "5,000 troops"),
        ("Who is the U.S. Defense Secretary?", "Lloyd Austin"),
        ("What share of its land forces has Russia amassed near Ukraine?", "60%"),
    ],
)
def test_short_answer_picks_the_phrase(seed_index, question, short):
    result = answermod.ask(seed_index, question)
    assert result.answers[0].answer is not None
    assert result.answers[0].answer.text == short


def test_short_answer_is_verbatim_at_its_coordinates_and_inside_the_quote(seed_index):
    corpus = seed_index.corpus
    result = answermod.ask(seed_index, "Who is sending additional troops to Lithuania?")
    a = result.answers[0]
    doc = corpus.document(a.document)
    s = a.answer
    assert doc.text_at(s.start_line, s.start_col, s.end_line, s.end_col) == s.text
    assert s.text in a.quote.text
    assert (s.start_line, s.start_col) >= (a.quote.start_line, a.quote.start_col)
    assert (s.end_line, s.end_col) <= (a.quote.end_line, a.quote.end_col)


def test_short_answer_never_only_repeats_the_question(seed_index):
    result = answermod.ask(seed_index, "Who is the NATO Secretary General?")
    short = result.answers[0].answer
    assert short is not None and "Stoltenberg" in short.text and "NATO" not in short.text


def test_explain_says_why_the_short_answer(seed_index):
    result = answermod.ask(seed_index, "How many troops is the U.S. sending to Poland?", explain=True)
    why = result.answers[0].explain["short_answer"]
    assert why["question_kind"] == shortanswer.NUMBER
    assert why["picked"]["text"] == result.answers[0].answer.text
    assert why["picked"]["kind"] == "number"


WORDS = st.sampled_from(
    "the Normans came in 1066 and 5,000 troops of King Harold met them near Hastings on 14 October ; "
    "about 60% fled , while Duke William , called the Conqueror , took England .".split()
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(WORDS, min_size=1, max_size=25), min_size=1, max_size=4),
    st.lists(WORDS, min_size=1, max_size=6),
)
def test_short_answers_are_always_verbatim(tmp_path_factory, paragraphs, question_words):
    text = "\n\n".join(" ".join(words) for words in paragraphs) + "\n"
    root = make_corpus(tmp_path_factory.mktemp("c"), {"a.txt": text})
    corpus = load_corpus(root)
    index = Index(corpus)
    result = answermod.ask(index, "Who " + " ".join(question_words) + "?", top=3)
    for a in result.answers:
        if a.answer is None:
            continue
        doc = corpus.document(a.document)
        s = a.answer
        assert s.text and s.text == s.text.strip()
        assert doc.text_at(s.start_line, s.start_col, s.end_line, s.end_col) == s.text
        assert s.text in a.quote.text


@pytest.mark.parametrize(
    ("word", "relative", "kind"),
    [
        ("penalties", "punishment", "near"),
        ("Canadian", "Canada", "near"),
        ("assisting", "help", "near"),
        ("Kremlin", "Russian", "far"),
    ],
)
def test_the_lexicon_relates_paraphrases(word, relative, kind):
    near, far = textmod.related(textmod.stem(word.lower()))
    assert textmod.stem(relative.lower()) in (near if kind == "near" else far)


def test_a_relative_finds_a_passage_but_never_outranks_the_word_itself(tmp_path):
    root = make_corpus(
        tmp_path,
        {
            "a.txt": "The council imposed sanctions on the port.\n\nThe harbour was quiet all winter.\n",
            "b.txt": "The council imposed penalties on the port.\n\nThe market opened at dawn.\n",
        },
    )
    index = Index(load_corpus(root))
    exact = answermod.ask(index, "What penalties did the council impose?", top=2)
    assert exact.answers[0].document == "b"
    assert [a.document for a in exact.answers] == ["b", "a"]
    q = answermod.analyse(index, "What punishment did the council impose?")
    assert "penalti" in {r for _, rel in q.related for r, _, _ in rel}


def test_explain_counts_the_relatives_it_used(seed_index):
    # The best passage's explanation, whether or not natoqa would answer
    # (confidence may decline this paraphrase).
    q = answermod.analyse(seed_index, "What consequences of a war worry the alliance?")
    ranked = answermod.rank(seed_index, q, answermod.CANDIDATES)
    explain = answermod.explain_answer(seed_index, q, ranked[0], ranked[1])
    used = {row["term"] for row in explain["related_terms"] if row["contribution"] > 0}
    assert {"fallout", "concern"} <= used
    total = sum(row["contribution"] for row in explain["terms"] + explain["related_terms"])
    assert total == pytest.approx(explain["passage_score"], abs=0.01)


def _confidence_of(index, question, document):
    """confidence() of the best candidate from `document`."""
    q = answermod.analyse(index, question)
    for c in answermod.rank(index, q, answermod.CANDIDATES):
        if index.corpus.passages[c.passage].document == document:
            return answermod.confidence(index, q, c)
    raise AssertionError(f"no candidate from {document}")


def test_a_word_elsewhere_in_the_document_counts_for_confidence(tmp_path):
    same = "The keepers painted the tower red in 1890.\n"
    root = make_corpus(
        tmp_path,
        {"a.txt": "Lighthouses guided the whalers home.\n\n" + same, "b.txt": "Gulls nested on the cliffs.\n\n" + same},
    )
    index = Index(load_corpus(root))
    question = "When did the lighthouse keepers paint the tower red?"
    # The same passage, but only a's document mentions lighthouses.
    assert _confidence_of(index, question, "a") > _confidence_of(index, question, "b")


def test_the_document_title_counts_for_confidence(tmp_path):
    same = "The keepers painted the tower red in 1890.\n"
    root = make_corpus(
        tmp_path,
        {"a.txt": same, "b.txt": same},
        index="# Test corpus\n\n- [Towers](a.txt)\n- [Gulls](b.txt)\n",
    )
    index = Index(load_corpus(root))
    question = "When did the keepers paint the tower red?"
    assert _confidence_of(index, question, "a") > _confidence_of(index, question, "b")


def test_a_short_question_needs_more_than_one_matching_word(tmp_path):
    root = make_corpus(tmp_path, {"a.txt": "The keepers painted the tower red in 1890.\n"})
    index = Index(load_corpus(root))
    # Fully matched, but one word could match by accident: below 1, and
    # below a longer question matched as fully.
    one = _confidence_of(index, "Who painted?", "a")
    four = _confidence_of(index, "Who painted the tower red in 1890?", "a")
    assert one < four
    assert one < 1.0


def test_a_long_quote_is_cut_to_whole_words_within_the_limit(tmp_path):
    # One sentence far over LONG_QUOTE: the cut keeps the clause with the
    # question's words, then grows by whole words up to the limit, so the
    # answer opening the next, long clause ("in 1890") stays in.
    before = " ".join(["gulls circled over the grey harbour"] * 6)
    after = " ".join(["while the fishing boats waited out the long winter storms"] * 5)
    sentence = f"Long ago {before}, the keepers painted the lighthouse tower red, in 1890 {after}.\n"
    root = make_corpus(tmp_path, {"a.txt": sentence})
    index = Index(load_corpus(root))
    quote = answermod.ask(index, "When did the keepers paint the lighthouse tower red?").answers[0].quote
    assert "the keepers painted the lighthouse tower red, in 1890" in quote.text
    assert answermod.LONG_QUOTE - 20 < len(quote.text) <= answermod.LONG_QUOTE
    start = sentence.index(quote.text)
    assert (start == 0 or sentence[start - 1] == " ") and sentence[start + len(quote.text)] in " ,"


def test_a_long_line_without_clauses_is_still_cut_to_the_limit(tmp_path):
    # A run-on line (no comma, no full stop) was quoted whole, megabytes of
    # it: the quote is the run of words holding the question's, within the
    # limit.
    words = "the gulls circled over the grey harbour".split()
    line = " ".join(words[i % len(words)] for i in range(400))
    middle = " the keepers painted the lighthouse tower red in 1890 "
    text = f"Notes\n\n{line}{middle}{line}\n"
    root = make_corpus(tmp_path, {"a.txt": text})
    index = Index(load_corpus(root))
    quote = answermod.ask(index, "When did the keepers paint the lighthouse tower red?").answers[0].quote
    assert 0 < len(quote.text) <= answermod.LONG_QUOTE
    assert text.splitlines()[quote.start_line - 1][quote.start_col - 1 : quote.end_col] == quote.text
    assert "keepers painted the lighthouse tower red" in quote.text


def test_a_long_line_without_white_space_is_cut_at_the_limit(tmp_path):
    text = "Notes\n\n" + "-".join(["keepers", "painted", "the", "lighthouse"] * 200) + "\n"
    root = make_corpus(tmp_path, {"a.txt": text})
    index = Index(load_corpus(root))
    quote = answermod.ask(index, "Who painted the lighthouse?").answers[0].quote
    assert (quote.start_line, quote.start_col, quote.text) == (3, 1, text[7 : 7 + answermod.LONG_QUOTE])


def test_two_words_of_one_name_meet_its_one_word_synonym(tmp_path, monkeypatch):
    # WordNet lists "United Kingdom" as one lemma with "Britain": the
    # lexicon keeps two-word lemmas under their joined terms.
    from natoqa import store

    assert "britain" in textmod.related("unit_kingdom")[0]
    root = make_corpus(
        tmp_path / "c",
        {
            "news.txt": "Allies\n\nBritain is sending warships and planes to the region.\n\n"
            "Germany is sending more troops to Lithuania.\n\n"
            "France offered to host talks in Paris next week.\n"
        },
    )
    index = store.load_index(load_corpus(root), use_cache=False)
    question = "What is the United Kingdom sending?"
    result = answermod.ask(index, question)
    assert result.answered and "Britain" in result.answers[0].quote.text
    q = answermod.analyse(index, question)
    assert "united kingdom" in q.related_words
    # Without the pair's entry, "United Kingdom" meets nothing of Britain.
    real = textmod.related
    monkeypatch.setattr(textmod, "related", lambda term: ((), ()) if "_" in term else real(term))
    index = store.load_index(load_corpus(root), use_cache=False)
    q = answermod.analyse(index, question)
    assert "united kingdom" not in q.related_words
    result = answermod.ask(index, question)
    assert not result.answered or "Britain" not in result.answers[0].quote.text


def test_explain_gives_a_stand_in_its_index_idf_and_the_weight_it_counted_at(tmp_path):
    # A question word the corpus lacks counts through a corpus term sharing
    # its first letters at PARTIAL of that term's IDF; the table showed the
    # halved weight as the term's IDF, so "concern" had one IDF in a question
    # saying "concern" and another in one saying "concentration".
    root = make_corpus(
        tmp_path,
        {"a.txt": "The council raised a concern about the harbour.\n\nThe harbour was quiet all winter.\n"},
    )
    index = Index(load_corpus(root))
    rows = {}
    for question in ("What concern did the council raise?", "What concentration did the council raise?"):
        q = answermod.analyse(index, question)
        ranked = answermod.rank(index, q, answermod.CANDIDATES)
        explain = answermod.explain_answer(index, q, ranked[0], None)
        rows[question] = next(row for row in explain["terms"] if row["term"] == "concern")
    own, stand_in = rows.values()
    assert own["idf"] == stand_in["idf"] == round(index.idf["concern"], 4)
    assert "weight" not in own and "stand_in_for" not in own
    assert stand_in["stand_in_for"] == "concentration"
    assert stand_in["weight"] == round(answermod.PARTIAL * index.idf["concern"], 4)
    assert stand_in["contribution"] == pytest.approx(answermod.PARTIAL * own["contribution"], abs=1e-4)


def test_a_word_after_a_stand_in_for_it_counts_in_full(tmp_path):
    # "concentration ... concern": the corpus term "concern" stood in for
    # the first word at PARTIAL of its IDF, and the question's own "concern"
    # after it was taken as a repeat, so it too counted at PARTIAL. The
    # words' order must not change what the question weighs.
    root = make_corpus(
        tmp_path,
        {"a.txt": "The council raised a concern about the harbour.\n\nThe harbour was quiet all winter.\n"},
    )
    index = Index(load_corpus(root))
    first = answermod.analyse(index, "Was the concern a concentration?")
    then = answermod.analyse(index, "Was the concentration a concern?")
    weighs = {"concern": index.idf["concern"]}
    assert dict(zip(then.terms, then.idf, strict=True)) == dict(zip(first.terms, first.idf, strict=True)) == weighs
    assert then.mass == pytest.approx(first.mass)
    assert sorted(then.telling) == sorted(first.telling)


def test_explain_rule_adds_up_to_the_sentence_score(seed_index):
    # The rule gave the sentence score as its IDF plus W_BIGRAM x its pairs,
    # leaving out the W_KIND x mass a sentence holding the kind of phrase
    # asked for gets: 4.55 shown where the rule made 4.21.
    q = answermod.analyse(seed_index, "Who is Jens Stoltenberg?")
    c = answermod.rank(seed_index, q, answermod.CANDIDATES)[0]
    explain = answermod.explain_answer(seed_index, q, c, None)
    features = explain["rerank_features"]
    assert features["cue"] == 1.0
    pairs = features["phrase"] * q.mass
    cue = answermod.W_KIND * q.mass * features["cue"]
    assert explain["sentence_score"] == pytest.approx(
        c.weights[c.sentence] + answermod.W_BIGRAM * pairs + cue, abs=1e-3
    )
    assert f"plus {answermod.W_BIGRAM} x the weight of question word pairs it repeats" in explain["rule"]
    assert f"plus {answermod.W_KIND} x the question's mass when it holds a phrase of the kind" in explain["rule"]


@pytest.mark.parametrize(
    ("question", "before_ranking"),
    [("Who won the football World Cup in 2018?", True), ("Is Ukraine part of the alliance?", False)],
)
def test_explain_gives_an_abstentions_confidence_and_the_minimum(seed_index, question, before_ranking):
    # --explain gave an answer its numbers but an abstention only its
    # words: how far the question fell short of answering went unsaid.
    plain = answermod.ask(seed_index, question)
    explained = answermod.ask(seed_index, question, explain=True)
    assert not plain.answered and not explained.answered
    assert plain.reason == answermod.TOO_LITTLE
    q = answermod.analyse(seed_index, question)
    # Refused before ranking or after, the same reason (the refusal before
    # ranking is a shortcut, see test_the_early_refusal_changes_no_result).
    assert answermod.may_answer(seed_index, q) != before_ranking
    best = answermod.rank(seed_index, q, answermod.CANDIDATES)[0]
    why = f"confidence {answermod.confidence(seed_index, q, best):.4f} in the best passage"
    assert explained.reason == f"{answermod.TOO_LITTLE} ({why}, below {answermod.MIN_CONFIDENCE:g})"


@pytest.mark.parametrize("top", [answermod.CANDIDATES - 1, answermod.CANDIDATES, answermod.CANDIDATES + 1])
def test_explain_names_the_last_answers_runner_up_however_deep(seed_index, top):
    # From --top 12 on the ranking went exactly `top` deep, so the last
    # answer's explanation had no runner-up, though more passages matched.
    question = "What are NATO troops doing in Russia and Ukraine?"
    deeper = answermod.ask(seed_index, question, top=top + 1).answers
    assert len(deeper) == top + 1
    explained = answermod.ask(seed_index, question, top=top, explain=True).answers
    assert [replace(a, explain=None) for a in explained] == list(deeper[:top])
    after = deeper[top]
    assert explained[-1].explain["runner_up"] == {
        "path": after.path,
        "start_line": after.passage.start_line,
        "end_line": after.passage.end_line,
        "score": after.score,
    }
