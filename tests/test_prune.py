"""The cache shrinks: an edit's old index, a vanished corpus's files, nothing else."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from natoqa import store
from natoqa.answer import ask
from natoqa.cli import cli
from natoqa.corpus import load_corpus

from .conftest import make_corpus

DOCS = {"tools.txt": "Tools\n\nA hammer drives nails. A saw cuts wood.\n"}


def cache() -> Path:
    return Path(os.environ["NATOQA_CACHE_DIR"])


def names(pattern: str = "*") -> list[str]:
    return sorted(p.name for p in cache().glob(pattern))


def key_of(folder: Path) -> str:
    return store.content_key(load_corpus(folder).fingerprint())


def edit(folder: Path) -> None:
    (folder / "tools.txt").write_text("Tools\n\nA hammer drives nails. A plane smooths wood.\n", encoding="utf-8")


def test_an_edit_removes_the_index_it_replaced(tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    store.open_index(folder)
    old = key_of(folder)
    assert names("index-*") == [f"index-{old}.nqi"]
    edit(folder)
    index = store.open_index(folder)
    new = key_of(folder)
    assert new != old
    # Before pruning, both files stayed: the cache grew by one index an edit.
    assert names("index-*") == [f"index-{new}.nqi"]
    assert len(names("where-*")) == 1
    assert "plane" in ask(index, "What smooths wood?").answers[0].quote.text


def test_the_cli_keeps_one_index_through_edits(runner, tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    for _ in range(3):
        result = runner.invoke(cli, ["ask", "--corpus", str(folder), "What cuts wood?", "--json"])
        assert result.exit_code in (0, 1), result.output
        text = (folder / "tools.txt").read_text(encoding="utf-8")
        (folder / "tools.txt").write_text(text + "\nA chisel carves.\n", encoding="utf-8")
    assert len(names("index-*")) == 1


def test_an_index_another_folder_still_names_is_kept(tmp_path):
    one = make_corpus(tmp_path / "one", DOCS)
    two = make_corpus(tmp_path / "two", DOCS)
    store.open_index(one)
    store.open_index(two)
    shared = key_of(one)
    assert key_of(two) == shared and names("index-*") == [f"index-{shared}.nqi"]
    edit(one)
    store.open_index(one)
    assert names("index-*") == sorted([f"index-{shared}.nqi", f"index-{key_of(one)}.nqi"])
    # And two is still answered from the cache, not rebuilt.
    assert store._open_cached(str(two), None) is not None


def test_a_deleted_corpus_loses_its_files_when_another_index_is_built(tmp_path):
    gone = make_corpus(tmp_path / "gone", DOCS)
    store.open_index(gone)
    gone_key = key_of(gone)
    shutil.rmtree(gone)
    other = make_corpus(tmp_path / "other", {"birds.txt": "Birds\n\nPenguins cannot fly.\n"})
    store.open_index(other)
    assert names("index-*") == [f"index-{key_of(other)}.nqi"]
    assert f"index-{gone_key}.nqi" not in names()
    assert len(names("where-*")) == 1


def test_a_cache_hit_removes_nothing(tmp_path):
    # Pruning runs after a build only: a deleted corpus's files wait for
    # the next build, and a warm answer pays for no scan of the folder.
    gone = make_corpus(tmp_path / "gone", DOCS)
    kept = make_corpus(tmp_path / "kept", {"birds.txt": "Birds\n\nPenguins cannot fly.\n"})
    store.open_index(gone)
    store.open_index(kept)
    shutil.rmtree(gone)
    before = names()
    store.open_index(kept)
    store.load_index(load_corpus(kept))
    assert names() == before


def test_files_natoqa_did_not_name_are_left_alone(tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    store.open_index(folder)
    cache().joinpath("notes.txt").write_text("mine\n")
    cache().joinpath("index-notakey.nqi").write_text("mine\n")
    stray = "0123456789abcdef0123456789abcdef01234567"
    cache().joinpath(f"index-{stray}.nqi").write_text("no locator names me\n")
    cache().joinpath("where-mine.json").write_text("{}\n")
    edit(folder)
    store.open_index(folder)
    for name in ("notes.txt", "index-notakey.nqi", f"index-{stray}.nqi", "where-mine.json"):
        assert name in names(), name


def test_a_damaged_locator_names_nothing_and_removes_nothing(tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    store.open_index(folder)
    (locator,) = cache().glob("where-*.json")
    old = key_of(folder)
    # A locator whose digest fails names a key that is not its own to give.
    data = locator.read_bytes().replace(old.encode(), b"f" * 40)
    locator.write_bytes(data)
    cache().joinpath(f"index-{'f' * 40}.nqi").write_text("someone else's\n")
    edit(folder)
    store.open_index(folder)
    assert f"index-{'f' * 40}.nqi" in names()
    # The old index: named by no locator that can be read, so not known
    # to be this corpus's; it stays (space only, never a wrong answer).
    assert f"index-{old}.nqi" in names()


def test_dense_vectors_go_with_the_index_they_were_made_for(tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    index = store.open_index(folder)
    dense_key = "a" * 40
    for part in ("", "-tokens", "-starts"):
        cache().joinpath(f"dense-{dense_key}{part}.npy").write_bytes(b"\x93NUMPY")
    store.remember_dense(cache(), index.corpus, dense_key)
    store.remember_dense(cache(), index.corpus, dense_key)  # once is enough
    (locator,) = cache().glob("where-*.json")
    assert store._read_locator(locator)["dense"] == [dense_key]
    # Touched, not edited: the locator is written again and keeps them.
    os.utime(folder / "tools.txt", ns=(1, 1))
    store.load_index(load_corpus(folder))
    assert store._read_locator(locator)["dense"] == [dense_key]
    assert len(names("dense-*")) == 3
    edit(folder)
    store.open_index(folder)
    assert names("dense-*") == []
    assert "dense" not in store._read_locator(locator)


def test_dense_vectors_of_another_content_are_not_noted(tmp_path):
    folder = make_corpus(tmp_path / "c", DOCS)
    store.open_index(folder)
    corpus = load_corpus(folder)
    edit(folder)
    # The locator is for the content before the edit; vectors of the
    # edited content are not its to name.
    store.remember_dense(cache(), load_corpus(folder), "b" * 40)
    (locator,) = cache().glob("where-*.json")
    assert "dense" not in store._read_locator(locator)
    assert corpus.fingerprint() != load_corpus(folder).fingerprint()


def test_a_file_that_cannot_be_removed_is_left_and_the_answer_given(tmp_path, monkeypatch):
    folder = make_corpus(tmp_path / "c", DOCS)
    store.open_index(folder)
    old = key_of(folder)
    edit(folder)
    real_unlink = Path.unlink

    def refuse(self, *args, **kwargs):
        if self.name.startswith("index-"):
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse)
    index = store.open_index(folder)
    assert f"index-{old}.nqi" in names()
    assert "plane" in ask(index, "What smooths wood?").answers[0].quote.text
