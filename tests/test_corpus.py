"""The corpus format: INDEX.md, links, front matter, passages and line numbers."""

from __future__ import annotations

import pytest

from natoqa.corpus import load_corpus, parse_index
from natoqa.errors import CorpusError

from .conftest import SEED_DOC, SEEDS, SHARED, make_corpus


def test_seed_corpus_loads_with_true_line_numbers():
    corpus = load_corpus(SEEDS)
    [doc] = corpus.documents
    assert doc.id == "nato-bolsters-eastern-flank"
    assert doc.title == "Doubting Russian exit, NATO looks to bolster its defenses"
    raw = SEED_DOC.read_text(encoding="utf-8").split("\n")
    assert list(doc.lines) == raw
    assert [(p.start_line, p.end_line) for p in doc.passages][:3] == [(1, 1), (3, 5), (7, 7)]
    assert len(doc.passages) == 19


def test_default_corpus_is_the_bundled_seed():
    assert load_corpus(None).documents[0].id == "nato-bolsters-eastern-flank"


def test_index_links_titles_and_front_matter(tmp_path):
    index = (
        "---\ntitle: My notes\ndescription: Things I wrote down\n---\n"
        "# Heading\n\nSome prose with a [link](ignored.txt) outside a list.\n\n"
        "- [First *doc*](a.txt) with trailing words\n"
        '* [Second](sub/b.txt "a title")\n'
        "1. [Web](https://example.com) is not a document\n"
        "2. [Anchor](#top) neither\n"
        "```\n- [In a fence](c.txt)\n```\n"
    )
    (tmp_path / "sub").mkdir()
    root = make_corpus(tmp_path, {"a.txt": "alpha\n", "sub/b.txt": "beta\n"}, index=index)
    corpus = load_corpus(root)
    assert corpus.title == "My notes"
    assert corpus.description == "Things I wrote down"
    assert [(d.id, d.title) for d in corpus.documents] == [("a", "First *doc*"), ("b", "Second")]


@pytest.mark.parametrize(
    ("value", "title"),
    [
        ("1984", "1984"),
        ("3.10", "3.10"),
        ("2024-05-01", "2024-05-01"),
        ("yes", "yes"),
        ("false", "false"),
        ("0", "0"),
        ("!!int abc", "abc"),
        ("'quoted'", "quoted"),
        ("~", "Heading"),
        ("", "Heading"),
    ],
)
def test_a_front_matter_title_is_its_text_as_written(tmp_path, value, title):
    # It was what Python printed for the value YAML built: "True" for yes,
    # "3.1" for 3.10, the heading for false or 0, exit 70 for `!!int abc`.
    index = f"---\ntitle: {value}\ndescription: {value}\n---\n# Heading\n- [A](a.txt)\n"
    corpus = load_corpus(make_corpus(tmp_path, {"a.txt": "alpha\n"}, index=index))
    assert corpus.title == title
    assert corpus.description == ("" if title == "Heading" else title)


def test_front_matter_keys_natoqa_does_not_use_are_not_built(tmp_path):
    # An impossible date (exit 70, "month must be in 1..12"), a tag of
    # another tool, an explicit tag on text that is no such value.
    index = "---\ntitle: Notes\npublished: 2024-13-45\nlayout: !jekyll page\nweight: !!int heavy\n---\n- [A](a.txt)\n"
    assert load_corpus(make_corpus(tmp_path, {"a.txt": "alpha\n"}, index=index)).title == "Notes"


@pytest.mark.parametrize(
    "before",
    [
        "```sh\n# install it first\n```\n",
        "~~~\n# a comment of the example\n~~~\n",
        "<!--\n# Old title\n-->\n",
        "<!-- draft\n# Old title -->\n",
    ],
    ids=["backtick fence", "tilde fence", "HTML comment", "comment closed on the heading's line"],
)
def test_the_corpus_title_is_no_heading_in_a_code_block_or_a_comment(tmp_path, before):
    # The first line starting "# " was the title, a shell comment in an
    # example or a heading commented out among them.
    index = before + "# Team notes <!-- until June -->\n\n- [A](a.txt)\n"
    assert load_corpus(make_corpus(tmp_path, {"a.txt": "alpha\n"}, index=index)).title == "Team notes"


def test_the_corpus_title_is_no_comment_of_the_front_matter(tmp_path):
    # `# ` opens a YAML comment there: "maintained by the board" was the title.
    index = "---\n# maintained by the board\ndescription: Minutes\n---\n# Team notes\n- [A](a.txt)\n"
    assert load_corpus(make_corpus(tmp_path, {"a.txt": "alpha\n"}, index=index)).title == "Team notes"


def test_parse_index_reports_link_lines():
    meta, entries = parse_index("# T\n\n- [A](a.txt)\n\n- [B](b%20c.txt)\n", "INDEX.md")
    assert meta == {}
    assert entries == [(3, "A", "a.txt"), (5, "B", "b c.txt")]


def test_parse_index_skips_links_inside_html_comments():
    # An entry commented out is no document: it was read (and a missing
    # file refused the whole corpus, exit 3).
    index = (
        "- [A](a.txt)\n"
        "<!--\n- [Old](old.txt)\n-->\n"
        "- [B](b.txt) <!-- was\n- [Older](older.txt)\n  -->\n"
        "- <!-- [Gone](gone.txt) --> [C](c.txt)\n"
        "<!-- - [One line](one.txt) -->\n"
        "- [D](d.txt)\n"
    )
    assert [target for _, _, target in parse_index(index, "INDEX.md")[1]] == ["a.txt", "b.txt", "c.txt", "d.txt"]


def test_parse_index_reads_destinations_as_commonmark_does():
    # A downloaded "notes(1).txt" was cut at its first ')': "notes(1", not found.
    index = '- [A](notes(1).txt)\n- [B](b\\(2\\).txt)\n- [C](<c (3).txt>)\n- [D](d%20(4).txt "t")\n- [E](sub\\e.txt)\n'
    targets = [target for _, _, target in parse_index(index, "INDEX.md")[1]]
    assert targets == ["notes(1).txt", "b(2).txt", "c (3).txt", "d (4).txt", "sub\\e.txt"]


def test_parse_index_reads_a_title_holding_brackets():
    # The item was skipped: its document silently left out of the corpus.
    index = "- [Minutes [draft]](m.txt)\n- [B \\[x](b.txt)\n"
    assert parse_index(index, "INDEX.md")[1] == [(1, "Minutes [draft]", "m.txt"), (2, "B [x", "b.txt")]


def test_parse_index_closes_a_code_block_only_with_a_fence_like_its_own():
    # Any ``` or ~~~ line closed a block: the example entries after a fence
    # shown inside one were read as documents (and, missing, exit 3).
    index = (
        "- [A](a.txt)\n"
        "```\n~~~\n- [X](x.txt)\n```\n"
        "~~~~ markdown\n~~~\n```\n- [Y](y.txt)\n~~~~~\n"
        "````\n```\n- [Z](z.txt)\n```\n````\n"
        "```\n``` sh\n- [W](w.txt)\n```  \n"
        "- [B](b.txt)\n"
        "``` not`a fence\n- [C](c.txt)\n"
    )
    assert [target for _, _, target in parse_index(index, "INDEX.md")[1]] == ["a.txt", "b.txt", "c.txt"]


def test_the_corpus_title_is_no_heading_after_a_fence_another_closes(tmp_path):
    index = "````\n```\n# not this\n````\n# Team notes\n- [A](a.txt)\n"
    assert load_corpus(make_corpus(tmp_path, {"a.txt": "alpha\n"}, index=index)).title == "Team notes"


def test_single_file_corpus(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("one\n\ntwo\nthree\n", encoding="utf-8")
    corpus = load_corpus(path)
    [doc] = corpus.documents
    assert doc.id == "notes"
    assert [(p.start_line, p.end_line, p.text) for p in doc.passages] == [(1, 1, "one"), (3, 4, "two\nthree")]


@pytest.mark.parametrize("ending", ["\r\n", "\r", "\n"])
def test_line_endings_keep_line_numbers(tmp_path, ending):
    text = ending.join(["Title", "", "first line", "second line", "   ", "third"]) + ending
    root = make_corpus(tmp_path, {"d.txt": text})
    doc = load_corpus(root).documents[0]
    assert [(p.start_line, p.end_line, p.text) for p in doc.passages] == [
        (1, 1, "Title"),
        (3, 4, "first line\nsecond line"),
        (6, 6, "third"),
    ]


def test_byte_order_mark_is_not_text(tmp_path):
    root = tmp_path / "c"
    make_corpus(root, {"d.txt": ""})
    (root / "d.txt").write_bytes("\ufeffHello there\n".encode())
    doc = load_corpus(root).documents[0]
    assert doc.lines == ("Hello there",)


def test_relative_location_gives_relative_paths(tmp_path, monkeypatch):
    make_corpus(tmp_path / "c", {"d.txt": "x\n"})
    monkeypatch.chdir(tmp_path)
    assert load_corpus("c").documents[0].path == "c/d.txt"
    assert load_corpus("./c/").documents[0].path == "c/d.txt"


def test_link_outside_is_refused(tmp_path):
    root = make_corpus(tmp_path / "c", {"d.txt": "x\n"}, index="- [Escape](../secret.txt)\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    with pytest.raises(CorpusError, match="leads outside the corpus folder"):
        load_corpus(root)


@pytest.mark.skipif(not (SHARED / "bench" / "squad-dev" / "corpus").is_dir(), reason="benchmark data absent")
def test_benchmark_corpus_loads_as_is():
    corpus = load_corpus(SHARED / "bench" / "squad-dev" / "corpus")
    assert len(corpus.documents) == 35
    assert sum(len(d.passages) for d in corpus.documents) == 35 + 1204  # a title line per article
