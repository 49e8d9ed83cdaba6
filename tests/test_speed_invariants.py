"""The fast paths give what the plain ones give: the same pool, the same floats."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natoqa import answer as answermod
from natoqa import render, store
from natoqa import text as textmod
from natoqa.answer import Answer, analyse, ask, rank
from natoqa.corpus import load_corpus

from .conftest import SEEDS

SQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "squad-dev"


@pytest.fixture(scope="module")
def seed_index():
    return store.load_index(load_corpus(SEEDS), use_cache=False)


@pytest.fixture(scope="module")
def squad_index():
    """One SQuAD 2.0 index for the module's tests: building it is most of
    each test's time. The tests compare two ways of ranking on one index,
    so what one leaves in the index's memos is what the other would meet.
    Only tests marked to skip without the SQuAD data use it."""
    return store.load_index(load_corpus(SQUAD / "corpus"), use_cache=False)


def seed_questions() -> list[str]:
    import yaml

    data = yaml.safe_load((SEEDS / "questions.yaml").read_text("utf-8"))
    return [q["question"] for q in data["questions"]]


def squad_questions(n: int) -> list[str]:
    path = SQUAD / "questions-small.yaml"
    out = []
    for line in path.read_text("utf-8").splitlines():
        line = line.strip().removeprefix("- ")
        if line.startswith("question:"):
            out.append(json.loads(line.split(":", 1)[1]))
    return out[:n]


def always_cut(monkeypatch):
    monkeypatch.setattr(answermod, "CUT_MIN", 0)
    monkeypatch.setattr(answermod, "BOUNDS_MIN", 0)
    monkeypatch.setattr(answermod, "LOOKUPS", 10**9)


def never_cut(monkeypatch):
    monkeypatch.setattr(answermod, "CUT_MIN", 10**9)
    monkeypatch.setattr(answermod, "BOUNDS_MIN", 10**9)


def ranked(index, question: str):
    return [asdict(c) for c in rank(index, analyse(index, question), answermod.CANDIDATES)]


def test_the_cut_first_stage_equals_the_full_one_on_the_seed_questions(seed_index, monkeypatch):
    questions = seed_questions() + ["NATO", "troops Poland Romania", "zebra quantum"]
    never_cut(monkeypatch)
    plain = [ranked(seed_index, q) for q in questions]
    always_cut(monkeypatch)
    assert [ranked(seed_index, q) for q in questions] == plain


@pytest.mark.skipif(not SQUAD.is_dir(), reason="SQuAD bench data not present")
def test_the_cut_first_stage_equals_the_full_one_on_squad(squad_index, monkeypatch):
    index = squad_index
    questions = squad_questions(150)
    never_cut(monkeypatch)
    plain = [ranked(index, q) for q in questions]
    always_cut(monkeypatch)
    assert [ranked(index, q) for q in questions] == plain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8), st.booleans())
def test_the_cut_never_changes_the_pool(seed_index, picks, related):
    # Questions made of the corpus's own words (and a relative-rich one), so
    # rare and common terms, ties and headings all come up.
    words = sorted({w for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    question = " ".join(words[i % len(words)] for i in picks) + (" penalties worry" if related else "")
    saved = answermod.CUT_MIN, answermod.BOUNDS_MIN, answermod.LOOKUPS
    try:
        answermod.CUT_MIN = answermod.BOUNDS_MIN = 10**9
        plain = ranked(seed_index, question)
        answermod.CUT_MIN, answermod.BOUNDS_MIN, answermod.LOOKUPS = 0, 0, 10**9
        assert ranked(seed_index, question) == plain
    finally:
        answermod.CUT_MIN, answermod.BOUNDS_MIN, answermod.LOOKUPS = saved


def test_answer_json_has_every_field_of_the_record(seed_index):
    # render.answer_dict builds the dict by hand (asdict is slow): a field
    # added to Answer must show up in the JSON too.
    result = ask(seed_index, "How many troops is the U.S. sending to Poland?", top=2, explain=True)
    for a in result.answers:
        data = render.answer_dict(a)
        assert list(data) == [f.name for f in fields(Answer)]
        expected = asdict(a)
        expected["matched"] = list(a.matched)
        assert data == expected


def exact_ranked(index, question: str, exact: int):
    return [asdict(c) for c in rank(index, analyse(index, question), answermod.CANDIDATES, exact=exact)]


@pytest.mark.parametrize("exact", [1, 2, 5])
def test_bounded_candidates_keep_the_exact_best(seed_index, exact):
    # rank(exact=n) scores only the passages whose bound can reach the n-th
    # best: its first n candidates are the full ranking's, in order.
    questions = seed_questions() + ["NATO", "troops Poland Romania", "zebra quantum", "penalties worry"]
    pruned_any = False
    for q in questions:
        full = ranked(seed_index, q)
        fast = exact_ranked(seed_index, q, exact)
        assert fast[:exact] == full[:exact], q
        pruned_any |= len(fast) < len(full)
    assert pruned_any  # the bound does prune, or this test tests nothing


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8), st.integers(1, 3))
def test_bounded_candidates_keep_the_exact_best_for_any_words(seed_index, picks, exact):
    words = sorted({w for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    question = " ".join(words[i % len(words)] for i in picks)
    assert exact_ranked(seed_index, question, exact)[:exact] == ranked(seed_index, question)[:exact]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
    st.one_of(
        # A few features alone: where a feature's share of a bound is left
        # out, nothing else in the bound covers for it.
        st.sets(st.integers(0, len(answermod.RERANK_FEATURES) - 1), min_size=1, max_size=3),
        st.just(frozenset(range(len(answermod.RERANK_FEATURES)))),
    ),
    st.lists(st.floats(0.01, 3.0), min_size=len(answermod.RERANK_FEATURES), max_size=len(answermod.RERANK_FEATURES)),
    st.integers(1, 3),
)
def test_the_bounds_hold_for_any_weights_the_refit_may_give(seed_index, picks, active, values, exact):
    # The bounds assume only weights >= 0 (rerank_fit.py keeps them so):
    # any such weights, zeros included, keep the exact best.
    weights = [v if i in active else 0.0 for i, v in enumerate(values)]
    words = sorted({w for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    question = " ".join(words[i % len(words)] for i in picks)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answermod, "RERANK", tuple(weights))
        assert exact_ranked(seed_index, question, exact)[:exact] == ranked(seed_index, question)[:exact]


def test_cached_maps_remember_misses_and_find_keys_by_table(tiny_corpus, monkeypatch):
    monkeypatch.setattr(store, "EAGER_FLOATS", 0)  # a large corpus's maps: read lazily
    monkeypatch.setattr(store, "EAGER_KEYS", 0)
    index = store.load_index(load_corpus(tiny_corpus))  # writes the cache
    cached = store.load_index(load_corpus(tiny_corpus))  # reads it back
    assert type(cached.idf) is not dict  # the lazy map over the file
    terms = sorted(index.idf)
    for _attempt in range(2):  # the second pass reads the memo
        assert [cached.idf.get(t) for t in terms] == [index.idf[t] for t in terms]
        assert "zzznotaword" not in cached.idf and cached.idf.get("zzznotaword") is None
        with pytest.raises(KeyError):
            cached.idf["zzznotaword"]
    # Past TABLE_AFTER lookups the keys are found through a table: the same keys.
    monkeypatch.setattr(store, "TABLE_AFTER", 0)
    fresh = store.load_index(load_corpus(tiny_corpus))
    assert [fresh.postings.get(t).ids.tolist() for t in terms] == [list(index.postings[t].ids) for t in terms]
    assert fresh.postings.get("zzznotaword") is None


def test_a_small_cached_index_reads_its_maps_whole_into_dicts(tiny_corpus):
    index = store.load_index(load_corpus(tiny_corpus))  # writes the cache
    cached = store.load_index(load_corpus(tiny_corpus))  # reads it back
    for name in ("idf", "title_postings", "prefixes"):
        value = getattr(cached, name)
        assert type(value) is dict, name
        assert value == dict(getattr(index, name)), name
    assert type(cached.postings) is not dict  # postings stay lazy: their CRCs are checked on read


def test_a_lazy_float_map_read_whole_equals_it_read_key_by_key(tiny_corpus, monkeypatch):
    monkeypatch.setattr(store, "EAGER_FLOATS", 0)
    store.load_index(load_corpus(tiny_corpus))
    lazy = store.load_index(load_corpus(tiny_corpus)).idf
    assert type(lazy) is not dict
    assert lazy.whole() == {key: lazy[key] for key in lazy}


def arrays(monkeypatch, on: bool):
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0 if on else 10**12)
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", -1)


def test_the_array_first_stage_equals_the_dict_walk_on_the_seed_questions(seed_index, monkeypatch):
    questions = seed_questions() + ["NATO", "troops Poland Romania", "zebra quantum", "penalties worry"]
    arrays(monkeypatch, False)
    plain = [ranked(seed_index, q) for q in questions]
    arrays(monkeypatch, True)
    assert [ranked(seed_index, q) for q in questions] == plain


@pytest.mark.skipif(not SQUAD.is_dir(), reason="SQuAD bench data not present")
def test_the_array_first_stage_equals_the_dict_walk_on_squad(squad_index, monkeypatch):
    index = squad_index
    questions = squad_questions(150)
    arrays(monkeypatch, False)
    plain = [ranked(index, q) for q in questions]
    arrays(monkeypatch, True)
    assert [ranked(index, q) for q in questions] == plain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8), st.booleans(), st.integers(1, 14))
def test_the_array_first_stage_never_changes_the_pool(seed_index, picks, related, depth):
    words = sorted({w for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    question = " ".join(words[i % len(words)] for i in picks) + (" penalties worry" if related else "")
    saved = answermod.ARRAYS_MIN, answermod.ARRAYS_AFTER
    q = analyse(seed_index, question)
    try:
        answermod.ARRAYS_MIN = 10**12
        plain = [asdict(c) for c in rank(seed_index, q, depth)]
        answermod.ARRAYS_MIN, answermod.ARRAYS_AFTER = 0, -1
        assert [asdict(c) for c in rank(seed_index, q, depth)] == plain
    finally:
        answermod.ARRAYS_MIN, answermod.ARRAYS_AFTER = saved


def test_one_question_never_imports_numpy(tmp_path):
    # A corpus past ARRAYS_MIN passages: one question is answered by the
    # dict walk, in a process that never imports numpy.
    import subprocess
    import sys

    body = "\n\n".join(f"Passage {i} tells of harbour number {i} and its {i % 7} cranes." for i in range(1_200))
    (tmp_path / "ports.txt").write_text(body + "\n", "utf-8")
    (tmp_path / "INDEX.md").write_text("# Ports\n\n- [Ports](ports.txt)\n", "utf-8")
    code = (
        "import sys\n"
        "from natoqa import store\n"
        "from natoqa.answer import ask\n"
        "from natoqa.corpus import load_corpus\n"
        f"index = store.load_index(load_corpus({str(tmp_path)!r}), use_cache=False)\n"
        "assert index.n_passages >= 1_000, index.n_passages\n"
        "assert ask(index, 'How many cranes has harbour 17?').answers\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_batch_switches_to_the_arrays_with_the_same_answers(monkeypatch, seed_index):
    # Past ARRAYS_AFTER, the same index answers from the arrays: the
    # answers on either side of the switch are the ones the walk gives.
    questions = seed_questions()
    arrays(monkeypatch, False)
    plain = [render.to_json(render.result_dict(ask(seed_index, q))) for q in questions]
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0)
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", getattr(seed_index, "_walked", 0) + 10 * seed_index.n_passages)
    got = [render.to_json(render.result_dict(ask(seed_index, q))) for q in questions]
    assert got == plain
    assert answermod._numpy() is not None and seed_index._walked > answermod.ARRAYS_AFTER


def test_without_numpy_the_dict_walk_serves(seed_index, monkeypatch):
    questions = seed_questions()[:10]
    arrays(monkeypatch, False)
    plain = [ranked(seed_index, q) for q in questions]
    arrays(monkeypatch, True)
    monkeypatch.setattr(answermod, "_np", None)  # as if numpy could not be imported
    assert [ranked(seed_index, q) for q in questions] == plain


@pytest.mark.parametrize("depth", [13, 20, 40])
def test_a_deeper_ranking_keeps_the_first_answers(seed_index, depth):
    # Past the re-ranker's pool, more answers are listed after the first
    # ones; the first ones do not move.
    for question in seed_questions():
        q = analyse(seed_index, question)
        shallow = [asdict(c) for c in rank(seed_index, q, answermod.CANDIDATES)]
        deep = [asdict(c) for c in rank(seed_index, q, depth)]
        assert deep[: len(shallow)] == shallow


def test_the_placed_sets_are_bounded(monkeypatch):
    from natoqa import index as indexmod

    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    monkeypatch.setattr(indexmod, "PLACED_MEMO", 40)
    terms = sorted(index.idf, key=lambda t: -len(index.postings.ids(t)))[:30]
    expected = {t: frozenset(index.postings.ids(t)) - frozenset(index.unplaced.get(t, ())) for t in terms}
    for t in terms:
        assert index.placed(t) == expected[t]
        assert sum(map(len, index._placed.values())) <= max(40, len(expected[t]))


def test_a_broken_numpy_leaves_the_dict_walk(monkeypatch):
    import builtins

    from natoqa import firststage

    real = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "numpy":
            raise RuntimeError("numpy was built for another CPU")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    assert firststage.numpy() is None


# Any text, the line separators and lone low surrogates (a file name that is
# not UTF-8, as Python decodes it) more often than chance would give them.
# (st.text leaves surrogates out whatever its alphabet: joined by hand. A
# high surrogate before a low one would read back as the pair's character,
# but names decoded with surrogateescape hold low ones only.)
_JSON_TEXT = st.lists(
    st.characters(exclude_categories=("Cs",)) | st.sampled_from("\x85\u2028\u2029\udc80\udcff"), max_size=8
).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | _JSON_TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12,
    )
)
def test_to_json_writes_what_json_dumps_writes(monkeypatch, data):
    # The encoder made once (render._C_ENCODE) and the fallback without it
    # write json.dumps' text, line separators and lone surrogates escaped.
    dumped = json.dumps(data, ensure_ascii=False)
    expected = "".join(
        f"\\u{ord(c):04x}" if c in "\x85\u2028\u2029" or "\ud800" <= c <= "\udfff" else c for c in dumped
    )
    assert render.to_json(data) == expected
    expected.encode("utf-8")  # no surrogate left raw: stdout can write it
    assert json.dumps(json.loads(expected), ensure_ascii=False) == dumped  # reads back as the same data
    with monkeypatch.context() as m:
        m.setattr(render, "_C_ENCODE", None)
        assert render.to_json(data) == expected


def test_a_quotes_clauses_from_the_index_terms_equal_those_from_stemming(seed_index):
    # _clauses takes a whole-sentence quote's stems from the index instead
    # of stemming its words again: the same terms at the same offsets.
    checked = 0
    for p, passage in enumerate(seed_index.corpus.passages):
        sentences = seed_index.sentences[p]
        for first in range(len(sentences)):
            for last in range(first, min(first + 2, len(sentences))):
                start, end = sentences[first].start, sentences[last].end
                known = answermod._known_terms(passage.text, sentences, first, last, start, end)
                if known is None:
                    continue
                assert answermod._clauses(passage.text, start, end, known) == answermod._clauses(
                    passage.text, start, end
                )
                checked += 1
    assert checked > 20


def test_terms_with_spans_takes_known_stems_only_when_they_fit():
    from natoqa import text as textmod

    text = "The allies deployed 5,000 troops to Poland."
    plain = textmod.terms_with_spans(text)
    renamed = tuple(f"x{i}" for i in range(len(plain)))
    assert textmod.terms_with_spans(text, renamed) == [(r, a, b) for r, (_, a, b) in zip(renamed, plain, strict=True)]
    assert textmod.terms_with_spans(text, renamed[:-1]) == plain  # one too few: each word stemmed


def test_the_cached_word_stems_are_the_stemmers_for_every_word_of_the_corpus():
    # A process restored from the cache takes the corpus's stems from the
    # index (text.know_stems) instead of stemming: they must be what the
    # stemmer gives, for every word a passage holds.
    from natoqa import shortanswer
    from natoqa import text as textmod

    store.load_index(load_corpus(SEEDS))  # writes the cache
    restored = store.load_index(load_corpus(SEEDS))
    assert isinstance(restored.word_stems, store._Rows)  # read back, not rebuilt
    n, words, stems = restored.word_stems[0], restored.word_stems[1].split("\n"), restored.word_stems[2].split("\n")
    assert n == len(words) == len(stems) == len(set(words))
    from natoqa import _nltk

    assert [_nltk.stemmer().stem(textmod.american(w)) for w in words] == stems
    held = {t.word for p in restored.corpus.passages for t in shortanswer.tokenize(p.text, 0, len(p.text)) if t.word}
    assert held == set(words)


def test_known_stems_are_taken_before_the_stemmer():
    from natoqa import text as textmod

    textmod.know_stems("qzxwords\nqzxword", "qzxw\nqzxw")  # the table starts empty (conftest)
    try:
        assert [textmod.stem("qzxwords"), textmod.stem("qzxword")] == ["qzxw", "qzxw"]
        assert textmod.stem("qzxwordy") == textmod.stem.__wrapped__("qzxwordy")  # not told: stemmed
    finally:
        textmod.stem.cache_clear()  # the made-up stems stay out of other tests
    textmod.know_stems("qzxother", "qzxo")  # one corpus's at a time
    assert textmod._KNOWN_STEMS == {"qzxother": "qzxo"}
    textmod.know_stems("", "")  # an empty corpus: none
    assert textmod._KNOWN_STEMS == {}


def test_the_parallel_build_gives_the_serial_builds_index(monkeypatch):
    # An index of PARALLEL_MIN passages or more is analysed in worker
    # processes, a chunk each: the words and stems they found come back too.
    import os

    from natoqa import index as indexmod

    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        pytest.skip("the parallel build needs fork and two CPUs")
    corpus = load_corpus(SEEDS)
    serial = indexmod.Index(corpus)
    monkeypatch.setattr(indexmod, "PARALLEL_MIN", 2)
    monkeypatch.setattr(indexmod, "CHUNK", 3)
    parallel = indexmod.Index(corpus)
    for name in indexmod.Index.STATE:
        assert getattr(parallel, name) == getattr(serial, name), name
    assert parallel.word_stems[0] > 100


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="abcz_09.é", min_size=1, max_size=6), unique=True, max_size=40),
    st.lists(st.text(alphabet="abcz_09.é", min_size=0, max_size=6), max_size=10),
    st.booleans(),
)
def test_sorted_lines_find_what_a_dict_of_the_lines_finds(keys, asked, final_newline):
    from natoqa import text as textmod

    keys = sorted(keys)
    body = "\n".join(f"{k} rest of {k} | x" for k in keys) + ("\n" if final_newline and keys else "")

    class FewBlocks(textmod.SortedLines):
        BLOCKS = 3  # blocks of many lines: the search inside a block is tried too

    plain = {k: f"rest of {k} | x" for k in keys}
    for make in (textmod.SortedLines, FewBlocks):
        lines = make("# a header\n#\n" + body)
        for key in keys + asked:
            assert lines.get(key) == plain.get(key), key
            assert lines.get(key, "none") == plain.get(key, "none"), key
        assert lines.whole() == plain
    assert textmod.SortedLines(body).get(keys[0] if keys else "a") == plain.get(keys[0] if keys else "a")  # no header


@pytest.mark.parametrize("name", ["lexicon.txt", "wordfreq.txt"])
def test_the_shipped_tables_are_sorted_for_the_binary_search(name):
    from natoqa import text as textmod

    text = textmod.data_text(name)
    body = text.splitlines()[sum(1 for line in text.splitlines() if line.startswith("#")) :]
    assert all(line and line[0] != "#" and " " in line for line in body)  # the header first, then KEY REST lines
    keys = [line.partition(" ")[0] for line in body]
    assert len(keys) > 10_000
    assert all(a < b for a, b in zip(keys, keys[1:], strict=False))  # sorted, each once
    lines = textmod.SortedLines(textmod.data_text(name))
    assert all(lines.get(k) is not None for k in keys[:: len(keys) // 500])


# Questions the seed article cannot answer: other articles' questions, and
# words the corpus lacks beside words it has.
STRANGERS = [
    "Who painted the Mona Lisa?",
    "What is the boiling point of water at sea level?",
    "Which river flows through Baghdad?",
    "How many moons does Jupiter have?",
    "When was the Magna Carta sealed?",
    "What did the Huguenots flee from in France?",
    "troops zebra quantum",
]


def assert_bound_holds(index, q) -> None:
    """confidence_bound is at least the confidence of every passage any
    ranking lists, with any of its sentences as the best one."""
    bound = answermod.confidence_bound(index, q)
    for c in rank(index, q, index.n_passages):
        for i in range(max(1, len(index.sentences[c.passage]))):
            assert answermod.confidence(index, q, replace(c, sentence=i)) <= bound, (q.text, c.passage, i)


def test_the_refusal_bound_holds_for_every_passage_and_sentence(seed_index):
    refused = 0
    for question in seed_questions() + STRANGERS:
        q = analyse(seed_index, question)
        if q.terms or q.related:
            assert_bound_holds(seed_index, q)
            refused += not answermod.may_answer(seed_index, q)
    assert refused >= 6  # the early refusal does happen, or this tests little


def test_the_early_refusal_changes_no_result(seed_index, monkeypatch):
    questions = seed_questions() + STRANGERS
    early = [asdict(ask(seed_index, q, 2, explain=True)) for q in questions]
    monkeypatch.setattr(answermod, "may_answer", lambda index, q: True)
    assert [asdict(ask(seed_index, q, 2, explain=True)) for q in questions] == early


@pytest.mark.skipif(not SQUAD.is_dir(), reason="SQuAD bench data not present")
def test_squad_questions_refused_early_are_refused_by_ranking_too(seed_index, monkeypatch):
    # SQuAD's questions asked of the seed article: off-topic, mostly.
    questions = squad_questions(150)
    for question in questions:
        q = analyse(seed_index, question)
        if q.terms or q.related:
            assert_bound_holds(seed_index, q)
    early = [asdict(ask(seed_index, q)) for q in questions]
    monkeypatch.setattr(answermod, "may_answer", lambda index, q: True)
    assert [asdict(ask(seed_index, q)) for q in questions] == early


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
    st.lists(st.sampled_from(["zebra", "quantum", "penalties", "worry", "kingdom", "united"]), max_size=3),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_the_refusal_bound_holds_for_any_shares(seed_index, picks, extra, related, document, far, sentence, title):
    # The bound assumes only RELATED_CONFIDENCE, CONF_DOCUMENT, CONF_FAR <= 1
    # and weights >= 0: for any such, no passage's confidence exceeds it.
    words = sorted({w for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    question = " ".join([words[i % len(words)] for i in picks] + extra)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (
            ("RELATED_CONFIDENCE", related),
            ("CONF_DOCUMENT", document),
            ("CONF_FAR", far),
            ("W_CONF_SENTENCE", sentence),
            ("W_CONF_TITLE", title),
        ):
            patch.setattr(answermod, name, value)
        q = analyse(seed_index, question)
        if q.terms or q.related:
            assert_bound_holds(seed_index, q)


def test_memoized_relatives_are_those_of_a_fresh_index(seed_index):
    # A word alone, then with one of its relatives (which the question's own
    # words leave out of its relatives): the memo made by the first must not
    # answer for the second.
    corpus_words = sorted({w.lower() for p in seed_index.corpus.passages for w in p.text.split() if w.isalpha()})
    questions = []
    for word in corpus_words:
        near, far = answermod._corpus_relatives(seed_index, textmod.stem(word))
        for r, _ in (near + far)[:1]:
            questions += [word, f"{word} {r}", f"{r} {word}"]
    assert len(questions) >= 30
    warm = [analyse(seed_index, q) for q in questions]
    stop = textmod.stopwords()
    for q in warm:
        own = {textmod.stem(w) for w in q.words if w not in stop} | set(q.terms)
        for _, found in q.related:
            assert not own & {r for r, _, _ in found}, q.text
    fresh = []
    for q in questions:
        if hasattr(seed_index, "_weighted_relatives"):
            del seed_index._weighted_relatives
        fresh.append(analyse(seed_index, q))
    assert warm == fresh
