"""The index cache: identical answers, invalidation, damage, atomic writes, where it writes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from natoqa import store
from natoqa import text as textmod
from natoqa.answer import ask
from natoqa.cli import cli
from natoqa.corpus import load_corpus
from natoqa.index import Index, Packed, lucene_idf

from .conftest import SEEDS

QUESTIONS = [
    "Which bird has the longest wingspan?",
    "What do penguins do in cold seas?",
    "What cuts wood?",
    "How many troops is the U.S. sending to Poland?",
    "Who is the NATO Secretary General?",
    "zebra quantum",
]


def answers(index, questions=QUESTIONS):
    return [asdict(ask(index, q, top=3, explain=True)) for q in questions]


def cache_files(kind: str = "") -> list[Path]:
    root = Path(os.environ["NATOQA_CACHE_DIR"])
    return sorted(root.glob(f"{kind}*")) if root.is_dir() else []


def plain(value):
    """A STATE value as plain lists and dicts, lazy containers included."""
    if isinstance(value, (store._Rows, Packed)):
        return [plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "keys"):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("location", ["tiny", "seeds"])
def test_cache_hit_gives_the_state_and_answers_of_a_fresh_build(tiny_corpus, location):
    corpus_dir = tiny_corpus if location == "tiny" else SEEDS
    fresh = store.load_index(load_corpus(corpus_dir), use_cache=False)
    assert cache_files() == []
    store.load_index(load_corpus(corpus_dir))  # builds and writes
    assert len(cache_files("index-")) == 1 and len(cache_files("where-")) == 1
    for cached in (store.load_index(load_corpus(corpus_dir)), store.open_index(corpus_dir)):
        for name in Index.STATE:
            assert plain(getattr(cached, name)) == plain(getattr(fresh, name)), name
        assert answers(cached) == answers(fresh)


def test_open_index_reads_no_document_when_the_cache_is_current(tiny_corpus, monkeypatch):
    store.open_index(tiny_corpus)
    from natoqa import corpus as corpusmod

    def no_full_load(*args, **kwargs):
        raise AssertionError("the corpus was loaded in full")

    monkeypatch.setattr(corpusmod, "load_corpus", no_full_load)
    monkeypatch.setattr(corpusmod, "file_digest", no_full_load)
    # Signatures recorded long after the files' last change are trusted.
    for path in cache_files("where-"):
        data = store._read_locator(path)
        for entry in data["documents"]:
            st = os.stat(entry[0])
            entry[2] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        path.write_bytes(store._locator_bytes(data))
    index = store.open_index(tiny_corpus)
    assert type(index.corpus).__name__ == "CachedCorpus"
    result = ask(index, "Which bird has the longest wingspan?")
    assert result.answers[0].quote.text == "The albatross has the longest wingspan of any living bird."


@pytest.mark.parametrize("opener", ["load_index", "open_index"])
def test_an_edited_document_is_never_answered_from_the_old_index(tiny_corpus, opener):
    def get():
        if opener == "open_index":
            return store.open_index(tiny_corpus)
        return store.load_index(load_corpus(tiny_corpus))

    assert ask(get(), "What cuts wood?").answers[0].quote.text == "A saw cuts wood."
    before = cache_files("index-")
    doc = tiny_corpus / "tools.txt"
    stat = doc.stat()
    # Same size, same mtime: only the content tells the change.
    doc.write_text("Tools\n\nA hammer drives nails. A axe cuts wood.\n", encoding="utf-8")
    os.utime(doc, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert doc.stat().st_size == stat.st_size
    assert ask(get(), "What cuts wood?").answers[0].quote.text == "A axe cuts wood."
    # Keyed by content: a new file, which replaced the old one (pruned).
    after = cache_files("index-")
    assert len(before) == len(after) == 1 and after != before


def test_an_edited_index_md_is_seen(tiny_corpus):
    store.open_index(tiny_corpus)
    (tiny_corpus / "INDEX.md").write_text("# Test corpus\n\n- [Tools](tools.txt)\n", encoding="utf-8")
    index = store.open_index(tiny_corpus)
    assert len(index.corpus.passages) == 2
    assert not ask(index, "Which bird has the longest wingspan?").answered


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "flipped byte": lambda data: data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:],
    "foreign": lambda data: b"PK\x03\x04 not a natoqa index at all" * 10,
    "header only": lambda data: data[:64],
    "json": lambda data: json.dumps({"format": 1, "state": {}}).encode(),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cache_file_is_ignored_and_rebuilt(tiny_corpus, damage):
    fresh = answers(store.load_index(load_corpus(tiny_corpus), use_cache=False))
    store.load_index(load_corpus(tiny_corpus))
    [path] = cache_files("index-")
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    assert answers(store.open_index(tiny_corpus)) == fresh
    assert answers(store.load_index(load_corpus(tiny_corpus))) == fresh
    # and the file was replaced by a good one
    assert store.read_index(path, path.stem[len("index-") :], load_corpus(tiny_corpus)) is not None


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b'{"format": 1, "named": 3}', b"\xff\xfe"])
def test_a_damaged_locator_is_ignored(tiny_corpus, content):
    fresh = answers(store.load_index(load_corpus(tiny_corpus), use_cache=False))
    store.open_index(tiny_corpus)
    [path] = cache_files("where-")
    path.write_bytes(content)
    assert answers(store.open_index(tiny_corpus)) == fresh


@pytest.mark.parametrize("field", ["path", "title"])
def test_a_locator_damaged_into_other_json_is_ignored(tiny_corpus, field):
    # One letter changed is still JSON: the path a citation shows, and the
    # corpus title, must not come from it.
    store.open_index(tiny_corpus)
    [path] = cache_files("where-")
    data = path.read_bytes()
    good = {"path": b'tools.txt"]', "title": b'"Test corpus"'}[field]
    assert data.count(good) == 1
    path.write_bytes(data.replace(good, good.replace(b"t", b"x", 1).replace(b"T", b"X", 1)))
    index = store.open_index(tiny_corpus)
    assert ask(index, "What cuts wood?").answers[0].path == str(tiny_corpus / "tools.txt")
    assert index.corpus.title == "Test corpus"


def test_writes_are_atomic_and_leave_no_temporary_files(tiny_corpus):
    store.open_index(tiny_corpus)
    store.open_index(tiny_corpus)
    names = [p.name for p in Path(os.environ["NATOQA_CACHE_DIR"]).iterdir()]
    assert names and all(not n.startswith(".tmp-") for n in names)


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "x.nqi"

    def chunks():
        yield b"part"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        store.write_atomic(target, chunks())
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_in_the_corpus_folder(tiny_corpus):
    before = sorted(p.name for p in tiny_corpus.rglob("*"))
    store.open_index(tiny_corpus)
    store.open_index(tiny_corpus)
    assert sorted(p.name for p in tiny_corpus.rglob("*")) == before


def test_a_cache_folder_inside_the_corpus_is_not_used(tiny_corpus, monkeypatch):
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(tiny_corpus / ".cache"))
    warnings = []
    index = store.open_index(tiny_corpus, warn=warnings.append)
    assert ask(index, "What cuts wood?").answered
    assert not (tiny_corpus / ".cache").exists()
    assert warnings and "inside the corpus" in warnings[0]


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(tmp_path / "mine"))
    assert store.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("NATOQA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.cache_dir() == tmp_path / "xdg" / "natoqa"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.cache_dir() == tmp_path / "home" / ".cache" / "natoqa"


def test_the_cli_writes_the_cache_under_natoqa_cache_dir(runner, tiny_corpus):
    result = runner.invoke(cli, ["ask", "What cuts wood?", "--json", "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0, result.output
    assert len(cache_files("index-")) == 1


def test_no_cache_writes_nothing(runner, tiny_corpus):
    result = runner.invoke(cli, ["ask", "What cuts wood?", "--json", "--no-cache", "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["answers"][0]["quote"]["text"] == "A saw cuts wood."
    assert cache_files() == []


def test_an_unwritable_cache_folder_still_answers_with_one_warning(runner, tiny_corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(blocker / "cache"))
    result = runner.invoke(cli, ["ask", "What cuts wood?", "--json", "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["answered"] is True
    # One warning: the locator, written after the index, is not said again.
    assert result.stderr.splitlines() == [
        f"natoqa: warning: cannot write the index cache in {blocker / 'cache'}: "
        "a file is in the way (the cache needs a folder there)"
    ]


def test_a_cache_problem_is_said_once_a_run_in_every_run(runner, tiny_corpus, tmp_path, monkeypatch):
    # The folders warned about were kept for the process: a second run in
    # it (natoqa called as a library, a test) said nothing of the problem.
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(blocker / "cache"))
    warning = (
        f"natoqa: warning: cannot write the index cache in {blocker / 'cache'}: "
        "a file is in the way (the cache needs a folder there)\n"
    )
    for _ in range(2):
        result = runner.invoke(cli, ["ask", "What cuts wood?", "-q", "--corpus", str(tiny_corpus)])
        assert (result.exit_code, result.stderr) == (0, warning)


def test_a_cache_problem_is_said_once_for_every_corpus_of_a_check(runner, tiny_corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(blocker))
    files = []
    for name, corpus_dir, question, document, line, answer in [
        ("tiny.yaml", tiny_corpus, "What cuts wood?", "tools", 3, "saw"),
        (
            "seeds.yaml",
            SEEDS,
            "How many troops is the U.S. sending to Poland?",
            "nato-bolsters-eastern-flank",
            13,
            "5,000",
        ),
    ]:
        path = tmp_path / name
        path.write_text(
            f"corpus: {corpus_dir}\nquestions:\n  - question: {question!r}\n    document: {document}\n"
            f"    line: {line}\n    answers: [{answer!r}]\n",
            encoding="utf-8",
        )
        files.append(str(path))
    result = runner.invoke(cli, ["check", *files, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["passed"] == 2
    assert result.stderr == (
        f"natoqa: warning: cannot write the index cache in {blocker}: "
        "a file is in the way (the cache needs a folder there)\n"
    )


def test_a_relative_corpus_name_keeps_relative_paths_from_the_cache(tiny_corpus, monkeypatch):
    monkeypatch.chdir(tiny_corpus.parent)
    store.open_index("tiny")
    index = store.open_index("tiny")
    assert ask(index, "What cuts wood?").answers[0].path == os.path.join("tiny", "tools.txt")
    absolute = store.open_index(str(tiny_corpus))
    assert ask(absolute, "What cuts wood?").answers[0].path == str(tiny_corpus / "tools.txt")


def test_a_single_file_corpus_is_cached_too(tiny_corpus):
    path = tiny_corpus / "birds.txt"
    fresh = answers(store.load_index(load_corpus(path), use_cache=False))
    store.open_index(path)
    assert answers(store.open_index(path)) == fresh


def test_cache_files_hold_no_pickle(tiny_corpus):
    store.open_index(tiny_corpus)
    for path in cache_files():
        data = path.read_bytes()
        assert b"\x80\x04\x95" not in data and b"\x80\x05\x95" not in data  # pickle protocol 4/5 frames
    [index_file] = cache_files("index-")
    assert index_file.read_bytes().startswith(store.MAGIC)


def test_progress_is_reported_while_building(tiny_corpus):
    seen = []
    corpus = load_corpus(tiny_corpus)
    store.load_index(corpus, use_cache=False, progress=lambda done, total: seen.append((done, total)))
    n = len(corpus.passages)
    assert seen[0] == (0, n) and seen[-1] == (n, n)


def test_scores_equal_rank_bm25_get_scores():
    from natoqa.index import _rank_bm25_model

    corpus = load_corpus(SEEDS)
    index = store.load_index(corpus, use_cache=False)
    reference = _rank_bm25_model(index.passage_terms, index.k1, index.b)
    # The reference really is rank-bm25's formula with Lucene's IDF.
    doc_freq: dict[str, int] = {}
    for freqs in reference.doc_freqs:
        for term in freqs:
            doc_freq[term] = doc_freq.get(term, 0) + 1
    assert reference.idf == pytest.approx({t: lucene_idf(len(corpus.passages), n) for t, n in doc_freq.items()})
    for question in ["How many troops is the U.S. sending to Poland?", "Putin NATO expansion Ukraine"]:
        terms = list(dict.fromkeys(index.passage_terms[3][:4] + textmod.terms(question)))
        expected = reference.get_scores(terms)
        got = index.scores(terms)
        assert [got.get(p, 0.0) for p in range(len(expected))] == pytest.approx(list(expected))
        ids = sorted(got)
        assert list(reference.get_batch_scores(terms, ids)) == pytest.approx([got[p] for p in ids])


@pytest.mark.parametrize("kind", ["rows", "postings", "map"])
def test_a_damaged_item_read_late_falls_back_to_a_fresh_index(tiny_corpus, kind):
    import struct

    fresh = answers(store.load_index(load_corpus(tiny_corpus), use_cache=False))
    store.open_index(tiny_corpus)
    [path] = cache_files("index-")
    data = bytearray(path.read_bytes())
    _, header_len, _ = struct.unpack("<8sQI", data[:20])
    header = json.loads(data[20 : 20 + header_len])
    specs = [spec for spec in header["state"].values() if spec["kind"] == kind]
    assert specs, f"no {kind} value in STATE"
    section = specs[0]["ids" if kind == "postings" else "data"]
    offset, length = header["sections"][section]
    start = 20 + header_len + offset
    for at in range(start, start + length):  # every item of the section damaged
        data[at] ^= 0x55
    path.write_bytes(bytes(data))
    assert answers(store.open_index(tiny_corpus)) == fresh
    assert store.read_index(path, path.stem[len("index-") :], load_corpus(tiny_corpus)) is not None
