"""Fuzzing the loader and `ask` over generated corpora (issue 6).

Corpora are drawn at random: file names, link forms in INDEX.md (good,
broken, escaping, web links, fenced), front matter, blank-line structures,
line endings, Unicode of every kind and now and then raw bytes. Whatever
comes, only natoqa's own errors may escape, and when a corpus loads the
invariants hold: each passage's lines are its text, lines are the file's
lines, and each quote is verbatim at its coordinates.

`make test` runs a few dozen examples a property; `make fuzz` runs the same
properties with NATOQA_FUZZ_EXAMPLES set high (and bench/fuzz.py for the CLI).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from natoqa.answer import ask
from natoqa.cli import cli
from natoqa.corpus import load_corpus
from natoqa.errors import CorpusError, UsageError
from natoqa.index import Index
from natoqa.session import validate_question

EXAMPLES = int(os.environ.get("NATOQA_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

WORDS = [
    "NATO",
    "troops",
    "Poland",
    "U.S.",
    "Gen.",
    "it’s",
    "it's",
    "5,000",
    "café",
    "Ωmega",
    "storks",
    "—",
    "e.g.",
    "Mr.",
]
# Every kind of character, surrogates aside (they cannot be written as UTF-8).
any_char = st.characters(exclude_categories=("Cs",))
word = st.one_of(st.sampled_from(WORDS), st.text(any_char, min_size=1, max_size=10))
words = st.lists(word, min_size=1, max_size=10).map(" ".join)
sentence = st.one_of(words.map(lambda s: s + "."), words.map(lambda s: s + "?"), words)
blank = st.sampled_from(["", " ", "\t", "  \t ", "\u3000", "\x0c"])
line = st.one_of(st.lists(sentence, min_size=1, max_size=3).map(" ".join), blank, st.text(any_char, max_size=30))
line_end = st.sampled_from(["\n", "\r\n", "\r"])

NAMES = [
    "a.txt",
    "b.md",
    "café.txt",
    "with space.txt",
    "sub/c.txt",
    "sub/deep/d.txt",
    "UPPER.TXT",
    "x.y.txt",
    "ñ/ü.txt",
]


@st.composite
def document_bytes(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # now and then, raw bytes
        return draw(st.binary(max_size=200))
    lines = draw(st.lists(line, max_size=15))
    if draw(st.booleans()):  # one line ending for the file
        ending = draw(line_end)
        text = ending.join(lines) + draw(st.sampled_from(["", ending, ending * 2]))
    else:  # mixed line endings
        text = "".join(ln + draw(line_end) for ln in lines)
    bom = "\ufeff" if draw(st.integers(0, 5)) == 0 else ""
    return (bom + text).encode("utf-8")


def link_forms(name: str):
    spaced = name.replace(" ", "%20")
    return st.sampled_from(
        [
            f"- [{name}]({spaced})",
            f"* [Title with \\] bracket]({spaced})",
            f"+ [ ](./{spaced})",
            f'1. [Numbered]({spaced} "a title")',
            f"12) [Numbered]({spaced} 'a title')",
            f"- [Angle](<{name}>)",
            f"- [Fragment]({spaced}#part)",
            f"  - [Indented](sub/../{spaced})",
            f"- [Two links]({spaced}) and [another](other.txt)",
            f"- text before [Inline]({spaced})",
        ]
    )


junk_line = st.one_of(
    st.sampled_from(
        [
            "# A heading",
            "Prose with [a link](a.txt) that is not a list item.",
            "- [Web](https://example.org/a.txt)",
            "- [Mail](mailto:someone@example.org)",
            "- [Anchor](#top)",
            "- [Missing](missing.txt)",
            "- [Up](../outside.txt)",
            "- [Root](/etc/hostname)",
            "- [Encoded up](%2E%2E/outside.txt)",
            "- [Empty]()",
            "- [Folder](sub)",
            "```",
            "~~~",
            "- no link at all",
            "",
        ]
    ),
    st.text(any_char, max_size=40),
)

front_matter = st.one_of(
    st.just(""),
    st.just("---\ntitle: Fuzzed\ndescription: a corpus\n---\n"),
    st.text(any_char, max_size=40).map(lambda t: f"---\n{t}\n---\n"),
    st.just("---\ntitle: [unclosed\n---\n"),
    st.just("---\ntitle: never closed\n"),
    st.just("---\n- a\n- list\n---\n"),
)


@st.composite
def corpora(draw):
    """(files: {relative path: bytes}, INDEX.md text)."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    files = {name: draw(document_bytes()) for name in names}
    index_lines = [draw(link_forms(name)) for name in names]
    for _ in range(draw(st.integers(0, 4))):
        index_lines.insert(draw(st.integers(0, len(index_lines))), draw(junk_line))
    meta = draw(front_matter) if draw(st.integers(0, 3)) == 0 else ""
    index = meta + draw(line_end).join(index_lines) + "\n"
    return files, index


def write(root: Path, files: dict[str, bytes], index: str) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "INDEX.md").write_text(index, encoding="utf-8", newline="")
    (root.parent / "outside.txt").write_text("outside text must never be read\n")


def editor_lines(data: bytes) -> list[str]:
    """The lines of a file as an editor shows them, computed independently."""
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return []
    # A final line break ends the last line; it does not start another.
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def check_corpus(corpus, root: Path, files: dict[str, bytes]) -> None:
    assert [p.index for p in corpus.passages] == list(range(len(corpus.passages)))
    assert len({d.id for d in corpus.documents}) == len(corpus.documents)
    for doc in corpus.documents:
        real = Path(os.path.realpath(doc.path))
        assert real.is_relative_to(os.path.realpath(root)), doc.path  # never outside
        rel = real.relative_to(os.path.realpath(root)).as_posix()
        assert list(doc.lines) == editor_lines(files[rel])
        assert all("\n" not in ln and "\r" not in ln for ln in doc.lines)
        covered = set()
        for p in doc.passages:
            body = doc.lines[p.start_line - 1 : p.end_line]
            assert p.text == "\n".join(body)
            assert all(ln.strip() for ln in body)
            assert p.start_line == 1 or not doc.lines[p.start_line - 2].strip()
            assert p.end_line == len(doc.lines) or not doc.lines[p.end_line].strip()
            covered.update(range(p.start_line, p.end_line + 1))
        assert covered == {n for n, ln in enumerate(doc.lines, 1) if ln.strip()}


def check_answers(corpus, result) -> None:
    for answer in result.answers:
        doc = corpus.document(answer.document)
        q, p = answer.quote, answer.passage
        assert q.text and q.text == q.text.strip()
        assert doc.text_at(q.start_line, q.start_col, q.end_line, q.end_col) == q.text
        assert p.start_line <= q.start_line <= q.end_line <= p.end_line
        assert p.text == "\n".join(doc.lines[p.start_line - 1 : p.end_line])
        if answer.answer is not None:
            a = answer.answer
            assert doc.text_at(a.start_line, a.start_col, a.end_line, a.end_col) == a.text


def _kind(message: str) -> str:
    """An error message without its paths and numbers, for statistics."""
    return re.sub(r"'[^']*'|\d[\d,]*|\S*/\S*", "_", message)


questions = st.one_of(words, st.text(any_char, max_size=60), st.sampled_from(WORDS))


@FUZZ
@given(corpus=corpora(), question_list=st.lists(questions, min_size=1, max_size=3))
def test_loader_and_ask_raise_only_natoqa_errors_and_keep_invariants(corpus, question_list):
    files, index_text = corpus
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        write(root, files, index_text)
        try:
            loaded = load_corpus(root)
        except CorpusError as exc:
            assert str(exc) and "\n" not in str(exc).strip()
            event("corpus error: " + _kind(str(exc)))
            return
        event("corpus loaded")
        check_corpus(loaded, root, files)
        index = Index(loaded)
        for question in question_list:
            try:
                question = validate_question(question)
            except UsageError:
                continue
            result = ask(index, question, top=3)
            event("answered" if result.answered else "no answer")
            assert result.answered == bool(result.answers)
            check_answers(loaded, result)


@FUZZ
@given(data=document_bytes())
def test_a_single_file_corpus_loads_or_says_why(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.txt"
        path.write_bytes(data)
        try:
            loaded = load_corpus(path)
        except CorpusError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ")
            nul = re.search(r"binary file \(NUL byte at offset (\d+)\)", message)
            bad = re.search(r"not UTF-8 text \(byte 0x([0-9a-f]{2}) at offset (\d+)\)", message)
            if nul:
                assert int(nul.group(1)) == data.index(b"\0")
            elif bad:
                with pytest.raises(UnicodeDecodeError) as err:
                    data.decode("utf-8")
                assert (int(bad.group(1), 16), int(bad.group(2))) == (data[err.value.start], err.value.start)
            else:
                assert message == f"{path}: the corpus has no text (every document is empty or blank)"
                assert not "".join(editor_lines(data)).strip()
            return
        [doc] = loaded.documents
        assert list(doc.lines) == editor_lines(data)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(corpus=corpora(), question=questions, fmt=st.sampled_from(["--json", "--jsonl", "-q", "--no-color"]))
def test_cli_ask_over_fuzzed_corpora_exits_with_a_documented_code(corpus, question, fmt):
    from click.testing import CliRunner

    files, index_text = corpus
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        write(root, files, index_text)
        result = CliRunner().invoke(cli, ["ask", "--corpus", str(root), "--no-cache", fmt, "--", question])
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    assert result.exit_code in (0, 1, 2, 3)
    lines = result.stderr.splitlines()
    assert all(ln.startswith(("natoqa: warning: ", "natoqa: error: ")) for ln in lines), result.stderr
    errors = [ln for ln in lines if ln.startswith("natoqa: error: ")]
    if result.exit_code in (2, 3):
        assert result.stdout == ""
        assert errors == lines[-1:], result.stderr  # one error line, the last
    else:
        assert errors == []
        if fmt in ("--json", "--jsonl"):
            data = json.loads(result.stdout)
            assert data["answered"] == (result.exit_code == 0)
