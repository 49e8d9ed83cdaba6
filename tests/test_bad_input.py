"""Bad input and faults (issue 6): each one is a designed behaviour.

Every case pins the exit code and the one line natoqa prints for it. The
fault cases that only a real process can show (a closed pipe, Ctrl-C, a
full disk, a closed stdout, a terminal on stdin) run natoqa as a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from natoqa import corpus as corpusmod
from natoqa.cli import cli
from natoqa.corpus import load_corpus

from .conftest import SEED_DOC
from .conftest import make_corpus as _make_corpus

NATOQA = [sys.executable, "-m", "natoqa"]
Q = "Who is Jens Stoltenberg?"
NO_WORDS = "No answer: no searchable words in the question.\n"


def invoke(runner, args, **kwargs):
    return runner.invoke(cli, args, catch_exceptions=False, **kwargs)


def make_corpus(root: Path, docs: dict[str, str], index: str | None = None) -> Path:
    """conftest's make_corpus, with documents in sub-folders too."""
    for name in docs:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
    return _make_corpus(root, docs, index)


def error_line(result) -> str:
    """The one line on stderr, checked to be the only one."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- files opened, seen through the interpreter's audit hook ---------------

_OPENED: list[str] | None = None


def _audit(event, args):
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@pytest.fixture
def opened():
    """The real paths of every file opened while the test runs."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


# --- corpus cases -------------------------------------------------------------

DOC = "Storks\n\nWhite storks nest on chimneys in spring.\n"


def _missing(root):
    pass


def _no_index(root):
    root.mkdir()
    (root / "a.txt").write_text(DOC)


def _index(text, docs=None):
    def build(root):
        make_corpus(root, docs or {}, index=text)

    return build


def _binary_file(name, data):
    def build(root):
        make_corpus(root, {}, index=f"- [A]({name})\n")
        (root / name).write_bytes(data)

    return build


CORPUS_ERRORS = [
    ("missing folder", _missing, "corpus not found: c"),
    ("folder without INDEX.md", _no_index, "c: not a corpus folder (no INDEX.md)"),
    (
        "empty INDEX.md",
        _index(""),
        "c/INDEX.md: lists no documents (expected list items such as '- [Title](file.txt)')",
    ),
    (
        "INDEX.md without document links",
        _index(
            "# Notes\n\nSee [the storks](a.txt) in prose.\n\n- a list item, no link\n"
            "- [the web](https://example.org/a.txt)\n- [an anchor](#top)\n\n```\n- [fenced](a.txt)\n```\n",
            {"a.txt": DOC},
        ),
        "c/INDEX.md: lists no documents (expected list items such as '- [Title](file.txt)')",
    ),
    (
        "link to a missing file",
        _index("- [A](a.txt)\n- [Gone](gone.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md:2: linked document not found: c/gone.txt",
    ),
    (
        "link with an encoded NUL",
        _index("- [A](a.txt%00)\n", {"a.txt": DOC}),
        "c/INDEX.md:1: link 'a.txt\\x00' holds a NUL character; no file is named so",
    ),
    (
        "link to a folder",
        _index("- [Sub](sub)\n", {"sub/a.txt": DOC}),
        "c/INDEX.md:1: linked document is a folder, not a text file: c/sub",
    ),
    (
        "duplicate document ids",
        _index("- [A](a.txt)\n- [Other A](more/a.txt)\n", {"a.txt": DOC, "more/a.txt": DOC}),
        "c/INDEX.md:2: duplicate document id 'a' (also on line 1); file names must be unique",
    ),
    (
        "empty document",
        _index("- [A](a.txt)\n", {"a.txt": ""}),
        "c: the corpus has no text (every document is empty or blank)",
    ),
    (
        "only blank lines",
        _index("- [A](a.txt)\n", {"a.txt": "\n  \n\t\n\r\n\n"}),
        "c: the corpus has no text (every document is empty or blank)",
    ),
    (
        "not UTF-8",
        _binary_file("latin1.txt", "Storks\n\nCigognes de l'été.\n".encode("latin-1")),
        "c/latin1.txt: not UTF-8 text (byte 0xe9 at offset 22)",
    ),
    (
        "UTF-16",
        _binary_file("wide.txt", "Storks\n".encode("utf-16")),
        "c/wide.txt: binary file (NUL byte at offset 3), not UTF-8 text",
    ),
    (
        "binary file",
        _binary_file("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        "c/image.txt: binary file (NUL byte at offset 8), not UTF-8 text",
    ),
    (
        "INDEX.md not UTF-8",
        _binary_file("INDEX.md", b"- [A](a.txt) \xff\n"),
        "c/INDEX.md: not UTF-8 text (byte 0xff at offset 13)",
    ),
    (
        "malformed YAML front matter",
        _index("---\ntitle: Storks\ndescription: [unclosed\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        # libyaml's mark: the stream ends at the closing '---' line.
        "c/INDEX.md:4: malformed front matter: did not find expected ',' or ']'",
    ),
    (
        "front matter with a tab indent",
        _index("---\ntitle: Storks\n\tdescription: x\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md:3: malformed front matter: found a tab character that violates indentation",
    ),
    (
        "front matter not a mapping",
        _index("---\n- one\n- two\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md: front matter must be a mapping of keys to values",
    ),
    (
        "front matter never closed",
        _index("---\ntitle: Storks\n\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md:1: front matter has no closing '---' line",
    ),
    # Deep nesting recursed until Python gave up, and an alias bomb took
    # gigabytes (exit 70 both).
    (
        "front matter nested too deeply",
        _index("---\ntitle: " + "[" * 20000 + "]" * 20000 + "\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md:2: malformed front matter: exceeded maximum nesting depth",
    ),
    (
        "an alias in front matter",
        _index("---\na: &a [x, x, x]\nb: [*a, *a, *a]\ntitle: Storks\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md:3: YAML aliases (*name) are not allowed in front matter",
    ),
    (
        "a list as the title",
        _index("---\ntitle: [Storks, Herons]\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md: front matter 'title' must be text, not a list",
    ),
    # Built into bytes, then printed: the title read "b'hello'".
    (
        "binary data as the title",
        _index("---\ntitle: !!binary aGVsbG8=\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md: front matter 'title' must be text, not binary data (!!binary)",
    ),
    (
        "a set as the description",
        _index("---\ndescription: !!set {a, b}\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md: front matter 'description' must be text, not a mapping",
    ),
    (
        "a title of an unknown tag",
        _index("---\ntitle: !cite Storks\n---\n- [A](a.txt)\n", {"a.txt": DOC}),
        "c/INDEX.md: front matter 'title' must be text, not a value tagged !cite",
    ),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CORPUS_ERRORS], ids=[c[0] for c in CORPUS_ERRORS])
@pytest.mark.parametrize("command", [["ask", "storks"], ["docs"], ["show", "a:3"]], ids=["ask", "docs", "show"])
def test_corpus_that_cannot_load_exits_3(runner, tmp_path, monkeypatch, build, message, command):
    monkeypatch.chdir(tmp_path)
    build(tmp_path / "c")
    result = runner.invoke(cli, [command[0], "--corpus", "c", *command[1:]])
    assert (result.exit_code, error_line(result)) == (3, f"natoqa: error: {message}")
    assert result.stdout == ""


def _outside(root):
    """A secret file next to the corpus folder: a link must never reach it."""
    secret = root.parent / "outside" / "secret.txt"
    secret.parent.mkdir(parents=True)
    secret.write_text("Storks\n\nThe secret stork is in the cellar.\n")
    return secret


ESCAPES = [
    (
        "dot-dot",
        lambda root, secret: "../outside/secret.txt",
        "link '../outside/secret.txt' leads outside the corpus folder",
    ),
    (
        "dot-dot to /etc/passwd",
        lambda root, secret: "../../../../../../../../etc/passwd",
        "link '../../../../../../../../etc/passwd' leads outside the corpus folder",
    ),
    (
        "dot-dot inside a sub-folder",
        lambda root, secret: "sub/../../outside/secret.txt",
        "link 'sub/../../outside/secret.txt' leads outside the corpus folder",
    ),
    (
        "percent-encoded dot-dot",
        lambda root, secret: "%2E%2E/outside/secret.txt",
        "link '../outside/secret.txt' leads outside the corpus folder",
    ),
    (
        "absolute path",
        lambda root, secret: str(secret),
        "link '{secret}' is an absolute path; links must stay inside the corpus folder",
    ),
    (
        "/etc/passwd",
        lambda root, secret: "/etc/passwd",
        "link '/etc/passwd' is an absolute path; links must stay inside the corpus folder",
    ),
    (
        "symlink to a file outside",
        lambda root, secret: (root / "link.txt").symlink_to(secret) or "link.txt",
        "link 'link.txt' leads outside the corpus folder",
    ),
    (
        "symlinked folder outside",
        lambda root, secret: (root / "docs").symlink_to(secret.parent) or "docs/secret.txt",
        "link 'docs/secret.txt' leads outside the corpus folder",
    ),
]


@pytest.mark.parametrize(("target", "message"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
def test_links_leaving_the_corpus_are_refused_and_never_read(runner, tmp_path, monkeypatch, opened, target, message):
    monkeypatch.chdir(tmp_path)
    root = make_corpus(tmp_path / "c", {"a.txt": DOC, "sub/b.txt": DOC}, index="")
    secret = _outside(root)
    link = target(root, secret)
    (root / "INDEX.md").write_text(f"# Storks\n\n- [A](a.txt)\n- [Escape]({link})\n")
    opened.clear()
    result = runner.invoke(cli, ["ask", "--corpus", "c", "where is the secret stork?"])
    expected = "natoqa: error: c/INDEX.md:4: " + message.format(secret=secret)
    assert (result.exit_code, error_line(result)) == (3, expected)
    assert str(secret.resolve()) not in opened
    assert "/etc/passwd" not in opened


def test_a_document_turned_into_a_link_leaving_the_corpus_is_refused_when_cached(runner, tmp_path, monkeypatch):
    # The same content, now behind a link out of the folder: the cache's
    # check of the content passed it, and answered where --no-cache exits 3.
    monkeypatch.chdir(tmp_path)
    root = make_corpus(tmp_path / "c", {"a.txt": DOC})
    args = ["ask", "--corpus", "c", "-q", "where do storks nest?"]
    assert invoke(runner, args).exit_code == 0
    outside = tmp_path / "outside.txt"
    outside.write_bytes((root / "a.txt").read_bytes())
    (root / "a.txt").unlink()
    (root / "a.txt").symlink_to(outside)
    expected = (3, "natoqa: error: c/INDEX.md:3: link 'a.txt' leads outside the corpus folder")
    for extra in ([], ["--no-cache"]):
        result = runner.invoke(cli, [*args, *extra])
        assert (result.exit_code, error_line(result)) == expected, extra


def test_symlink_inside_the_corpus_is_followed(runner, tmp_path):
    root = make_corpus(tmp_path / "c", {"real/a.txt": DOC}, index="- [A](a.txt)\n")
    (root / "a.txt").symlink_to(root / "real" / "a.txt")
    result = invoke(runner, ["ask", "--corpus", str(root), "-q", "where do storks nest?"])
    assert (result.exit_code, result.stdout) == (0, f"{root / 'a.txt'}:3:1: White storks nest on chimneys in spring.\n")


@pytest.mark.parametrize(
    ("text", "said"), [("", "is empty"), ("\n\n", "holds only blank lines"), (" \t\n", "holds only blank lines")]
)
def test_an_empty_document_among_others_is_a_warning(runner, tmp_path, text, said):
    root = make_corpus(tmp_path / "c", {"a.txt": DOC, "empty.txt": text})
    result = invoke(runner, ["ask", "--corpus", str(root), "-q", "where do storks nest?"])
    assert result.exit_code == 0
    assert result.stdout == f"{root / 'a.txt'}:3:1: White storks nest on chimneys in spring.\n"
    assert error_line(result) == f"natoqa: warning: {root / 'empty.txt'}: document {said}"


# Escape sequences (retitle the terminal, colour), a bell, DEL and an 8-bit CSI.
HOSTILE = "Storks\n\nWhite storks \x1b]0;pwned\x07nest on \x1b[31mchimneys\x1b[0m\x7f in \x9b spring.\n"
HOSTILE_QUOTE = "White storks \x1b]0;pwned\x07nest on \x1b[31mchimneys\x1b[0m\x7f in \x9b spring."
SHOWN_QUOTE = "White storks ␛]0;pwned␇nest on ␛[31mchimneys␛[0m␡ in \ufffd spring."


def _no_controls(text: str) -> bool:
    return not any(c not in "\n\t" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) for c in text)


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "where do storks nest?"],
        ["ask", "where do storks nest?", "--explain"],
        ["ask", "where do storks nest?", "-q"],
        ["show", "a:3"],
        ["docs"],
    ],
    ids=["ask", "explain", "quiet", "show", "docs"],
)
def test_control_characters_in_a_document_are_shown_not_sent(runner, tmp_path, args):
    # A document must not drive the reader's terminal: what natoqa shows a
    # person (and -q) carries pictures of control characters, one for one.
    root = make_corpus(tmp_path / "c", {"a.txt": HOSTILE}, index="- [Storks \x01 and more](a.txt)\n")
    result = invoke(runner, [*args, "--corpus", str(root)])
    assert result.exit_code == 0, result.output
    assert _no_controls(result.stdout) and _no_controls(result.stderr)
    if args[0] == "docs":
        assert result.stdout == f"2  {root / 'a.txt'}  Storks ␁ and more\n"
    else:
        assert SHOWN_QUOTE in result.stdout
    if args[-1] == "-q":
        assert result.stdout == f"{root / 'a.txt'}:3:1: {SHOWN_QUOTE}\n"


def test_control_characters_stay_exact_in_json_and_visible_in_check_reports(runner, tmp_path):
    import xml.etree.ElementTree as ET

    root = make_corpus(tmp_path / "c", {"a.txt": HOSTILE})
    result = invoke(runner, ["ask", "where do storks nest?", "--corpus", str(root), "--json"])
    assert json.loads(result.stdout)["answers"][0]["quote"]["text"] == HOSTILE_QUOTE
    questions = tmp_path / "q.yaml"
    questions.write_text('questions:\n  - question: where do storks nest?\n    answers: ["in autumn"]\n')
    junit = tmp_path / "report.xml"
    result = invoke(runner, ["check", str(questions), "--corpus", str(root), "--junit", str(junit)])
    assert result.exit_code == 1
    assert SHOWN_QUOTE in result.stdout and _no_controls(result.stdout)
    # JUnit XML cannot hold control characters: raw, they made it unreadable.
    [failure] = ET.parse(junit).getroot().iter("failure")
    assert SHOWN_QUOTE in failure.get("message") and SHOWN_QUOTE in failure.text


def test_control_characters_in_an_error_are_shown_not_sent(runner, tmp_path):
    root = make_corpus(tmp_path / "c", {}, index="- [Gone](gone\x1b[2J.txt)\n")
    result = invoke(runner, ["ask", "--corpus", str(root), "where do storks nest?"])
    assert result.exit_code == 3
    assert error_line(result) == f"natoqa: error: {root}/INDEX.md:1: linked document not found: {root}/gone␛[2J.txt"


LINE_ENDINGS = [
    ("LF", "\n"),
    ("CRLF", "\r\n"),
    ("CR", "\r"),
]


@pytest.mark.parametrize("bom", [False, True], ids=["no-BOM", "BOM"])
@pytest.mark.parametrize("newline", [e[1] for e in LINE_ENDINGS], ids=[e[0] for e in LINE_ENDINGS])
def test_line_endings_and_bom_keep_coordinates_right(runner, tmp_path, newline, bom):
    lines = [
        "Storks",
        "",
        "White storks nest on chimneys.",
        "They fly south in autumn.",
        "",
        "",
        "Cranes dance in the marsh.",
    ]
    data = newline.join(lines).encode() + newline.encode()
    root = make_corpus(tmp_path / "c", {}, index="- [Birds](birds.txt)\n")
    (root / "birds.txt").write_bytes(b"\xef\xbb\xbf" * bom + data)
    result = invoke(runner, ["ask", "--corpus", str(root), "--json", "where do cranes dance?"])
    assert result.exit_code == 0
    [answer] = json.loads(result.stdout)["answers"]
    assert answer["quote"] == {
        "text": "Cranes dance in the marsh.",
        "start_line": 7,
        "start_col": 1,
        "end_line": 7,
        "end_col": 26,
    }
    assert answer["passage"] == {"text": "Cranes dance in the marsh.", "start_line": 7, "end_line": 7}
    doc = load_corpus(root).documents[0]
    assert doc.lines == tuple(lines)
    assert [(p.start_line, p.end_line) for p in doc.passages] == [(1, 1), (3, 4), (7, 7)]
    assert invoke(runner, ["show", "--corpus", str(root), "birds:4"]).stdout == (
        f"{root / 'birds.txt'}:3-4  Birds\n 3 │ White storks nest on chimneys.\n>4 │ They fly south in autumn.\n"
    )


def test_bom_in_index_md_is_ignored(runner, tmp_path):
    root = make_corpus(tmp_path / "c", {"a.txt": DOC}, index="")
    (root / "INDEX.md").write_bytes(b"\xef\xbb\xbf---\ntitle: Birds\n---\n- [A](a.txt)\r\n")
    assert load_corpus(root).title == "Birds"
    result = invoke(runner, ["docs", "--corpus", str(root)])
    assert (result.exit_code, result.stdout) == (0, f"2  {root / 'a.txt'}  A\n")


def test_document_over_the_limit_is_refused(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(corpusmod, "MAX_DOCUMENT_BYTES", 1000)
    make_corpus(tmp_path / "c", {"big.txt": "Storks nest.\n" * 77, "small.txt": DOC})  # 1,001 bytes
    result = runner.invoke(cli, ["ask", "--corpus", "c", "storks"])
    assert (result.exit_code, error_line(result)) == (
        3,
        "natoqa: error: c/big.txt: 1,001 bytes is over natoqa's limit of 1,000 bytes a document; split it",
    )
    (tmp_path / "c" / "big.txt").write_text("Storks nest.\n" * 76)  # 988 bytes: allowed
    assert invoke(runner, ["ask", "--corpus", "c", "-q", "storks nest"]).exit_code == 0


def test_the_real_limit_is_50_mb_and_is_checked_before_reading(runner, tmp_path, opened):
    root = make_corpus(tmp_path / "c", {"a.txt": DOC, "huge.txt": ""})
    with open(root / "huge.txt", "wb") as f:
        f.truncate(50 * 1024 * 1024 + 1)  # sparse: no disk used
    opened.clear()
    result = runner.invoke(cli, ["docs", "--corpus", str(root)])
    assert (result.exit_code, error_line(result)) == (
        3,
        f"natoqa: error: {root / 'huge.txt'}: 52,428,801 bytes is over natoqa's limit of 52,428,800 bytes a document; split it",
    )
    assert str(root / "huge.txt") not in opened


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_a_file_bigger_than_its_stat_says_is_still_cut_at_the_limit(runner, monkeypatch):
    # /proc files report a size of 0: only a bounded read keeps the limit.
    monkeypatch.setattr(corpusmod, "MAX_DOCUMENT_BYTES", 100)
    result = runner.invoke(cli, ["docs", "--corpus", "/proc/self/status"])
    assert (result.exit_code, error_line(result)) == (
        3,
        "natoqa: error: /proc/self/status: over natoqa's limit of 100 bytes a document; split it",
    )


def test_a_large_allowed_document_loads_with_bounded_memory(tmp_path):
    # 8 MB of text, loaded in a fresh interpreter: the peak resident memory
    # must stay a small multiple of the file (lines, passages, one copy).
    paragraph = ("The stork returns to the same nest every spring, and the village counts the days. " * 4).strip()
    text = "\n\n".join(f"{i}. {paragraph}" for i in range(24_000)) + "\n"
    path = tmp_path / "big.txt"
    path.write_text(text)
    size = path.stat().st_size
    script = (
        "import resource, sys\n"
        "from natoqa.corpus import load_corpus\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "c = load_corpus(sys.argv[1])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(len(c.passages), (peak - base) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True).stdout
    passages, grown = map(int, out.split())
    assert passages == 24_000
    assert size > 8_000_000
    assert grown < 6 * size, f"loading {size:,} bytes took {grown:,} bytes"


# --- question cases -----------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\t", " \n "], ids=["empty", "spaces", "tab", "newline"])
@pytest.mark.parametrize("fmt", [[], ["--json"], ["--jsonl"], ["-q"]])
def test_an_empty_question_is_a_usage_error(runner, question, fmt):
    # `natoqa ask "$Q"` with Q unset was answered "no searchable words",
    # exit 1, as if a question had been asked; a batch skips blank lines.
    result = invoke(runner, ["ask", *fmt, "--", question])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "natoqa: error: the question is empty (give one as an argument, or '-' to read them from stdin)\n"
    )


@pytest.mark.parametrize(
    "question",
    ["what is it?", "Who is it that was?", "?!... ,;", "“”’", "-- --"],
    ids=["stopwords", "more stopwords", "punctuation", "typographic quotes", "dashes"],
)
def test_no_searchable_words_is_a_clear_no_answer(runner, question):
    result = invoke(runner, ["ask", "--", question])
    assert (result.exit_code, result.stdout, result.stderr) == (1, NO_WORDS, "")
    data = json.loads(invoke(runner, ["ask", "--json", "--", question]).stdout)
    assert data == {
        "question": question.strip(),
        "answered": False,
        "answers": [],
        "reason": "no searchable words in the question",
    }


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("a" * 100_000, "the question is 100,000 characters long; the limit is 2,000"),
        ("NATO " * 401, "the question is 2,005 characters long; the limit is 2,000"),
        ("What\x01is NATO?", "the question holds a control character (U+0001) at column 5"),
        ("What is\0NATO?", "the question holds a control character (NUL) at column 8"),
        ("NATO\x1b[31m", "the question holds a control character (U+001B) at column 5"),
        ("NATO\x7f", "the question holds a control character (U+007F) at column 5"),
        ("NATO\u0085", "the question holds a control character (U+0085) at column 5"),
        ("Who is Stoltenberg\n?", "the question holds a control character (U+000A) at column 19"),
        ("caf\udcff NATO", "the question is not UTF-8 (byte 0xff at column 4)"),
    ],
    ids=["100k", "just over", "SOH", "NUL", "escape", "DEL", "C1", "newline", "bad UTF-8"],
)
def test_question_that_cannot_be_a_question_exits_2(runner, question, message):
    result = runner.invoke(cli, ["ask", "--", question])
    assert (result.exit_code, result.stdout, error_line(result)) == (2, "", f"natoqa: error: {message}")


def test_a_question_of_exactly_the_limit_is_answered(runner):
    question = (Q + " ") * 80
    question = question[:2000]
    result = invoke(runner, ["ask", "-q", "--", question])
    assert result.exit_code == 0
    assert "Jens Stoltenberg" in result.stdout


def test_invalid_utf8_in_argv_from_a_real_process():
    proc = subprocess.run([*NATOQA, "ask", b"caf\xe9 NATO"], capture_output=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        b"",
        b"natoqa: error: the question is not UTF-8 (byte 0xe9 at column 4)\n",
    )


def _error_record(line, question, error):
    return {"question": question, "line": line, "error": error}


def test_a_decomposed_document_is_matched_and_its_short_answer_whole(runner, tmp_path):
    # Short answers were cut inside a character ("Anna Mu" of "Anna Mu\u0308ller"),
    # and a question's composed "Müller" matched nothing.
    path = tmp_path / "nfd.txt"
    path.write_text("Cafe owners said the mayor Anna Mu\u0308ller approved the plan in 2019.\n", encoding="utf-8")
    data = json.loads(invoke(runner, ["ask", "--json", "--corpus", str(path), "Who approved the plan?"]).stdout)
    assert data["answers"][0]["answer"]["text"] == "Anna Mu\u0308ller"
    result = invoke(runner, ["ask", "-q", "--corpus", str(path), "Who is M\u00fcller?"])
    assert (result.exit_code, result.stdout.split(": ", 1)[1]) == (
        0,
        "Cafe owners said the mayor Anna Mu\u0308ller approved the plan in 2019.\n",
    )


@pytest.mark.parametrize("fmt", ["--json", "--jsonl"])
def test_a_document_changed_mid_batch_stops_it_keeping_what_was_answered(runner, monkeypatch, fmt):
    # The run stopped with exit 3, and a --json array was never written:
    # every answer before the change was lost.
    import natoqa.session
    from natoqa.errors import CorpusError

    real = natoqa.session.Session.answer

    def changing(self, question):
        if question == "What does Putin want?":
            raise CorpusError("a.txt: the document changed while natoqa was answering; run again")
        return real(self, question)

    monkeypatch.setattr(natoqa.session.Session, "answer", changing)
    result = invoke(runner, ["ask", "-", fmt], input=f"{Q}\nWhat does Putin want?\n{Q}\n")
    assert result.exit_code == 3
    assert error_line(result) == "natoqa: error: a.txt: the document changed while natoqa was answering; run again"
    records = json.loads(result.stdout) if fmt == "--json" else [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["question"] for r in records] == [Q]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_byte_order_mark_on_stdin_is_not_part_of_the_first_question(runner, jobs):
    stdin = ("\ufeff" + Q + "\n" + "\ufeffWhat does Putin want?\n" * 40).encode()
    result = invoke(runner, ["ask", "-", "--jsonl", "-j", jobs], input=stdin)
    questions = [json.loads(line)["question"] for line in result.stdout.splitlines()]
    # Only the stream's first bytes are a mark; one further on is the line's.
    assert questions == [Q] + ["\ufeffWhat does Putin want?"] * 40


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_stdin_lines_may_end_in_a_lone_cr_as_a_documents_do(runner, jobs):
    # A file saved with CR line ends was one line, refused: "control
    # character (U+000D)". Lines are numbered as an editor (and a
    # document's citations) number them. The 40 questions come in one read
    # (up to the first LF); the 100,000-byte line, ended by a lone CR, takes
    # more than one read of READ_BYTES.
    questions = [Q, "What does Putin want?"] * 20
    stdin = "\r".join(questions).encode() + b"\r\r\nbell\x07\r" + b"x" * 100_000 + b"\rWho is Jens Stoltenberg?"
    result = invoke(runner, ["ask", "-", "--jsonl", "-j", jobs], input=stdin)
    assert result.exit_code == 2
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in records if "answered" in r] == [*questions, Q]
    assert [(r["line"], r["error"]) for r in records if "error" in r] == [
        (42, "the question holds a control character (U+0007) at column 5"),
        (43, "the line is 100,000 bytes long; a question may have at most 2,000 characters"),
    ]


def test_a_crlf_cut_by_the_end_of_a_read_ends_one_line(monkeypatch):
    # The CR ends one read, its LF starts the next: one line end, not two.
    import io

    from natoqa import session as sessionmod

    monkeypatch.setattr(sessionmod, "READ_BYTES", 8)
    stream = io.BytesIO(b"1234567\r\nsecond\r\n\rfourth\r")
    assert list(sessionmod._lines(stream)) == [(1, b"1234567", 7), (2, b"second", 6), (3, b"", 0), (4, b"fourth", 6)]


def test_batch_bad_lines_get_error_records_and_the_rest_are_answered(runner):
    stdin = b"".join(
        [
            Q.encode() + b"\n",
            b"bad \xff byte\n",
            b"nul\0here\n",
            b"bell\x07\n",
            b"\n",
            b"   \n",
            b"What does Putin want?\r\n",
            b"x" * 100_000 + b"\n",
            b"NATO " * 500 + b"\n",
            b"How many troops is the U.S. sending to Poland?",  # no final line break
        ]
    )
    result = invoke(runner, ["ask", "-", "--jsonl"], input=stdin)
    assert result.exit_code == 2
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("answered") for r in records] == [True, None, None, None, True, None, None, True]
    assert [r["question"] for r in records if "answered" in r] == [
        Q,
        "What does Putin want?",
        "How many troops is the U.S. sending to Poland?",
    ]
    assert [r for r in records if "error" in r] == [
        _error_record(2, "bad \ufffd byte", "not UTF-8 (byte 0xff at column 5)"),
        _error_record(3, "nul\0here", "the question holds a control character (NUL) at column 4"),
        _error_record(4, "bell\x07", "the question holds a control character (U+0007) at column 5"),
        _error_record(8, "x" * 2000, "the line is 100,000 bytes long; a question may have at most 2,000 characters"),
        _error_record(9, "NATO " * 500, "the question is 2,500 characters long; the limit is 2,000"),
    ]
    assert result.stderr.splitlines() == [
        "natoqa: error: stdin line 2: not UTF-8 (byte 0xff at column 5)",
        "natoqa: error: stdin line 3: the question holds a control character (NUL) at column 4",
        "natoqa: error: stdin line 4: the question holds a control character (U+0007) at column 5",
        "natoqa: error: stdin line 8: the line is 100,000 bytes long; a question may have at most 2,000 characters",
        "natoqa: error: stdin line 9: the question is 2,500 characters long; the limit is 2,000",
    ]


def test_batch_error_records_in_a_json_array(runner):
    result = invoke(runner, ["ask", "-", "--json"], input=Q.encode() + b"\n\xc3\x28\n")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data[0]["answered"] is True
    assert data[1] == _error_record(2, "\ufffd(", "not UTF-8 (byte 0xc3 at column 1)")


@pytest.mark.parametrize("fmt", [[], ["-q"]], ids=["human", "quiet"])
def test_batch_bad_line_in_human_and_quiet_output(runner, fmt):
    result = invoke(runner, ["ask", "-", *fmt], input=b"\xff\n" + Q.encode() + b"\n")
    assert result.exit_code == 2
    assert "Jens Stoltenberg" in result.stdout
    assert error_line(result) == "natoqa: error: stdin line 1: not UTF-8 (byte 0xff at column 1)"


def test_batch_with_only_stopword_lines_exits_1(runner):
    result = invoke(runner, ["ask", "-", "--jsonl"], input="what is it?\n" + Q + "\n")
    assert result.exit_code == 1
    first = json.loads(result.stdout.splitlines()[0])
    assert first["reason"] == "no searchable words in the question"


def test_batch_of_random_binary_junk_answers_the_real_question(runner):
    # Each a line of junk: a CR ends a line too, and a piece between two
    # could be text, a question like any other.
    random = os.urandom(20_000).replace(b"\n", b"").replace(b"\r", b"")
    junk = bytes(range(256)).replace(b"\r", b"") * 40 + b"\n" + random + b"\n"
    result = invoke(runner, ["ask", "-", "--jsonl"], input=junk + Q.encode() + b"\n")
    assert result.exit_code == 2
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["question"] == Q and records[-1]["answered"] is True
    assert all("error" in r for r in records[:-1])


def test_stdin_terminal_says_how_to_end_input():
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([*NATOQA, "ask", "-", "-q"], stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(follower)
    os.write(leader, Q.encode() + b"\n\x04")  # a line, then Ctrl-D
    out, err = proc.communicate(timeout=60)
    os.close(leader)
    assert (proc.returncode, err) == (
        0,
        b"natoqa: reading questions from the terminal, one a line; end with Ctrl-D.\n",
    )
    assert out.startswith(str(SEED_DOC).encode() + b":15:1: ")


def test_closed_stdin_with_dash_exits_2():
    proc = subprocess.run(
        [*NATOQA, "ask", "-"], stdin=subprocess.DEVNULL, capture_output=True, preexec_fn=lambda: os.close(0)
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        b"",
        b"natoqa: error: cannot read questions: standard input is closed\n",
    )


# --- output cases -------------------------------------------------------------


def _questions(n: int) -> bytes:
    return (Q + "\n").encode() * n


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("fmt", [["--jsonl"], ["--json"], []], ids=["jsonl", "json", "human"])
def test_closed_pipe_exits_quietly(tmp_path, fmt, unbuffered):
    # --json writes its array at the end, in one write far larger than a
    # pipe holds: unbuffered, the short write used to lose the rest silently.
    questions = tmp_path / "questions.txt"
    questions.write_bytes(_questions(300))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with questions.open("rb") as stdin:
        natoqa = subprocess.Popen(
            [*NATOQA, "ask", "-", *fmt], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        head = subprocess.Popen(["head", "-1"], stdin=natoqa.stdout, stdout=subprocess.PIPE)
        natoqa.stdout.close()  # head owns the read end now
        first, _ = head.communicate(timeout=60)
        err = natoqa.stderr.read()
        natoqa.wait(timeout=60)
    assert (natoqa.returncode, err) == (141, b"")
    assert first == b"[\n" if fmt == ["--json"] else (Q.encode() in first or b"Stoltenberg" in first)


def test_ctrl_c_during_a_batch_exits_130_without_traceback():
    proc = subprocess.Popen(
        [*NATOQA, "ask", "-", "--jsonl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdin.write((Q + "\n").encode())
    proc.stdin.flush()
    first = proc.stdout.readline()  # the batch is under way, waiting for line 2
    assert json.loads(first)["answered"] is True
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, b"", b"natoqa: error: interrupted\n")


def test_ctrl_c_during_a_json_batch_still_writes_the_answers_so_far():
    # The array was written only at the end, so Ctrl-C lost every answer.
    # The line after the first question is bad: its error on stderr says
    # the first has been answered.
    proc = subprocess.Popen(
        [*NATOQA, "ask", "-", "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdin.write((Q + "\nbell\x07\n").encode())
    proc.stdin.flush()
    said = proc.stderr.readline()
    assert said == b"natoqa: error: stdin line 2: the question holds a control character (U+0007) at column 5\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, b"natoqa: error: interrupted\n")
    # (The bad line's record may come after the signal: said first, then kept.)
    assert [r["question"] for r in json.loads(out)] in ([Q], [Q, "bell\x07"])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        ["ask", Q],
        ["ask", Q, "--json"],
        ["ask", "-", "--jsonl"],
        ["ask", "-", "-q"],
        ["docs"],
        ["show", "nato-bolsters-eastern-flank:13"],
        ["--help"],
    ],
    ids=["human", "json", "jsonl batch", "quiet batch", "docs", "show", "help"],
)
def test_full_disk_fails_with_one_line(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*NATOQA, *args], input=_questions(3), stdout=full, stderr=subprocess.PIPE)
    assert (proc.returncode, proc.stderr) == (2, b"natoqa: error: cannot write output: No space left on device\n")


def _unwritable_stderr(kind: str):
    """A file descriptor for stderr that fails every write: /dev/full, or a
    pipe whose reader has gone."""
    if kind == "full":
        return os.open("/dev/full", os.O_WRONLY)
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("kind", ["full", "closed pipe"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_stderr_that_cannot_be_written_loses_no_answer(kind, jobs):
    # The first bad line's error on stderr raised: the batch ended with
    # nothing on stdout (the answers before it were dropped), exit 2 for a
    # full disk and 141 for a closed pipe, as if stdout's reader had gone.
    lines = [Q, "bell\x07"] * 10 + [Q] * 5
    stderr = _unwritable_stderr(kind)
    try:
        proc = subprocess.run(
            [*NATOQA, "ask", "-", "--jsonl", "-j", jobs],
            input="\n".join(lines).encode() + b"\n",
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    finally:
        os.close(stderr)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 2
    assert [r["question"] for r in records] == lines
    assert [r.get("error") for r in records[1:4:2]] == [
        "the question holds a control character (U+0007) at column 5"
    ] * 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_warning_stderr_cannot_take_does_not_stop_the_answer(tmp_path):
    # The corpus's warning (an empty document) raised on a full stderr, and
    # the question went unanswered: "cannot write output", exit 2.
    root = make_corpus(tmp_path / "c", {"a.txt": "The budget was approved by the board.\n", "b.txt": ""})
    stderr = _unwritable_stderr("full")
    try:
        proc = subprocess.run(
            [*NATOQA, "ask", "-q", "--corpus", str(root), "Who approved the budget?"],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    finally:
        os.close(stderr)
    assert (proc.returncode, proc.stdout.endswith(b"a.txt:1:1: The budget was approved by the board.\n")) == (0, True)


@pytest.mark.parametrize("args", [["ask", Q], ["ask", Q, "-q"], ["docs"]], ids=["human", "quiet", "docs"])
def test_closed_stdout_fails_with_one_line(args):
    proc = subprocess.run([*NATOQA, *args], stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert (proc.returncode, proc.stderr) == (2, b"natoqa: error: cannot write output: standard output is closed\n")


def test_closed_stderr_still_exits_with_the_right_code():
    # Nowhere to write the message: the exit code alone must still say it.
    proc = subprocess.run(
        [*NATOQA, "ask", "--corpus", "/nonexistent", Q], stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2)
    )
    assert (proc.returncode, proc.stdout) == (3, b"")
    proc = subprocess.run([*NATOQA, "ask", "-q", Q], stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert proc.returncode == 0
    assert proc.stdout.startswith(str(SEED_DOC).encode() + b":15:1: ")


# --- natoqa never writes inside the corpus, never changes a user's file -------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root with its kind, size, mtime and content digest."""
    tree = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        tree[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return tree


@pytest.mark.parametrize("cache_env", ["NATOQA_CACHE_DIR set", "default cache location"])
def test_natoqa_never_writes_inside_the_corpus(runner, tmp_path, monkeypatch, tiny_corpus, cache_env):
    if cache_env == "default cache location":
        monkeypatch.delenv("NATOQA_CACHE_DIR")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tiny_corpus)  # even as the current directory
    (tiny_corpus / "questions.yaml").write_text("questions:\n  - question: What cuts wood?\n")
    before = snapshot(tiny_corpus)
    corpus = ["--corpus", str(tiny_corpus)]
    for args in (
        ["ask", *corpus, "which tool cuts wood"],
        ["ask", *corpus, "which tool cuts wood"],  # a second run reads what the first cached
        ["ask", *corpus, "-", "--jsonl"],
        ["docs", *corpus],
        ["show", *corpus, "birds:3"],
        ["check", *corpus, "questions.yaml"],
        ["check", *corpus, "questions.yaml", "--record", "-o", str(tmp_path / "recorded.yaml")],
    ):
        result = runner.invoke(cli, args, input="Where do penguins swim?\n")
        assert result.exit_code in (0, 1), (args, result.stderr)
    assert snapshot(tiny_corpus) == before


# --- the index cache: written atomically; damaged or foreign files ignored ----


def _cache_files(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.iterdir())} if cache.is_dir() else {}


ASK = ["ask", "--json", "-k", "2", "which tool cuts wood"]

DAMAGES = {
    "empty": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "one byte flipped": lambda path: path.write_bytes(_flip(path.read_bytes())),
    "random bytes": lambda path: path.write_bytes(os.urandom(4096)),
    "foreign JSON": lambda path: path.write_text('{"format": 1, "passages": [], "__class__": "os.system"}'),
    "a pickle": lambda path: path.write_bytes(b"\x80\x04\x95\x1f\x00cos\nsystem\n(S'echo pwned'\ntR."),
    "a folder": lambda path: (path.unlink(), path.mkdir()),
}


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize("kind", ["index-", "where-"])
@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_a_damaged_cache_is_ignored_and_rebuilt(runner, tmp_path, tiny_corpus, damage, kind):
    cache = tmp_path / "cache"
    args = [*ASK, "--corpus", str(tiny_corpus)]
    first = invoke(runner, args)
    assert first.exit_code == 0
    [path] = [p for p in cache.iterdir() if p.name.startswith(kind)]
    DAMAGES[damage](path)
    again = invoke(runner, args)
    # A folder in the way cannot be replaced by a rename: ignored, and said once.
    warning = f"natoqa: warning: cannot write the index cache in {cache}: Is a directory\n"
    expected = warning if damage == "a folder" else ""
    assert (again.exit_code, again.stdout, again.stderr) == (0, first.stdout, expected)
    if damage != "a folder":
        assert path.is_file() and path.read_bytes() != b""
        assert invoke(runner, args).stdout == first.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["index-", "where-"])
def test_a_fifo_in_place_of_a_cache_file_is_ignored_not_waited_on(tmp_path, tiny_corpus, kind):
    # In a process of its own: a read that blocks on the FIFO would hang the suite.
    cache = tmp_path / "cache"
    env = dict(os.environ, NATOQA_CACHE_DIR=str(cache))
    cmd = [*NATOQA, "ask", "--corpus", str(tiny_corpus), "-q", "which tool cuts wood"]
    first = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert first.returncode == 0
    [path] = [p for p in cache.iterdir() if p.name.startswith(kind)]
    path.unlink()
    os.mkfifo(path)
    again = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, b"")
    assert path.is_file()  # replaced by a good file


def test_a_cache_entry_that_is_a_symlink_to_a_user_file_never_changes_it(runner, tmp_path, tiny_corpus):
    cache = tmp_path / "cache"
    args = [*ASK, "--corpus", str(tiny_corpus)]
    first = invoke(runner, args)
    user_file = tmp_path / "notes.txt"
    user_file.write_text("my notes\n")
    for path in list(cache.iterdir()):
        path.unlink()
        path.symlink_to(user_file)
    again = invoke(runner, args)
    assert (again.exit_code, again.stdout, again.stderr) == (0, first.stdout, "")
    assert user_file.read_text() == "my notes\n"


def test_interrupted_cache_write_leaves_no_partial_file(runner, tmp_path, tiny_corpus, monkeypatch):
    cache = tmp_path / "cache"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", interrupted)
        result = runner.invoke(cli, [*ASK, "--corpus", str(tiny_corpus)])
    assert (result.exit_code, error_line(result)) == (130, "natoqa: error: interrupted")
    assert _cache_files(cache) == {}  # neither a half-written index nor a temporary file
    result = invoke(runner, [*ASK, "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0
    assert sorted(p.name[:6] for p in cache.iterdir()) == ["index-", "where-"]


def test_a_cache_dir_that_is_a_file_still_answers_with_one_warning(runner, tmp_path, tiny_corpus, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a user's file\n")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(blocker))
    result = invoke(runner, ["ask", "--corpus", str(tiny_corpus), "-q", "which tool cuts wood"])
    assert result.exit_code == 0
    assert result.stdout == f"{tiny_corpus / 'tools.txt'}:3:24: A saw cuts wood.\n"
    # Said as what is wrong, not as mkdir's "File exists".
    assert result.stderr == (
        f"natoqa: warning: cannot write the index cache in {blocker}: "
        "a file is in the way (the cache needs a folder there)\n"
    )
    assert blocker.read_text() == "a user's file\n"


def test_a_cache_dir_below_a_file_says_a_file_is_in_the_way(runner, tmp_path, tiny_corpus, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a user's file\n")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(blocker / "cache"))
    result = invoke(runner, ["ask", "--corpus", str(tiny_corpus), "-q", "which tool cuts wood"])
    assert result.exit_code == 0
    assert result.stderr.endswith(": a file is in the way (the cache needs a folder there)\n")
    assert blocker.read_text() == "a user's file\n"


# --- questions files for `natoqa check` ----------------------------------------

CHECK_ERRORS = [
    (
        "unclosed quote",
        'questions:\n  - question: "unclosed\n',
        "q.yaml:3:1: YAML syntax error: found unexpected end of stream",
    ),
    (
        "unclosed list",
        "questions:\n  - question: [a, b\n",
        "q.yaml:3:1: YAML syntax error: did not find expected ',' or ']'",
    ),
    (
        "tab indent",
        "questions:\n\t- question: x\n",
        "q.yaml:2:1: YAML syntax error: found character that cannot start any token",
    ),
    ("empty file", "", "q.yaml: must be a mapping with a 'questions' list, but it is empty"),
    ("a list, not a mapping", "- question: x\n", "q.yaml: must be a mapping with a 'questions' list, but it is a list"),
    (
        "a string, not a mapping",
        "just a string\n",
        "q.yaml: must be a mapping with a 'questions' list, but it is a string",
    ),
    ("questions not a list", "questions: 5\n", "q.yaml:1: 'questions' must be a list, not an integer"),
    (
        "question not a string",
        "questions:\n  - question: 5\n",
        "q.yaml:2: entry 1: 'question' must be a string, not an integer",
    ),
    (
        "entry not a mapping",
        "questions:\n  - [a, b]\n",
        "q.yaml:2: entry 1: must be a mapping with a 'question', not a list",
    ),
    ("no question", "questions:\n  - answers: [x]\n", "q.yaml:2: entry 1: has no 'question'"),
    ("empty question", 'questions:\n  - question: ""\n', "q.yaml:2: entry 1: 'question' is empty"),
    (
        "line a string",
        'questions:\n  - question: x\n    line: "three"\n',
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not a string",
    ),
    (
        "line a boolean",
        "questions:\n  - question: x\n    line: true\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not a boolean",
    ),
    ("line negative", "questions:\n  - question: x\n    line: -3\n", "q.yaml:3: entry 1: 'line' must be 1 or more"),
    (
        "answerable a string",
        "questions:\n  - question: x\n    answerable: maybe\n",
        "q.yaml:3: entry 1: 'answerable' must be true or false, not a string",
    ),
    (
        "answers an integer",
        "questions:\n  - question: x\n    answers: 5\n",
        "q.yaml:3: entry 1: 'answers' must be a list of strings, not an integer",
    ),
    ("top zero", "top: 0\nquestions:\n  - question: x\n", "q.yaml:1: 'top' must be a whole number from 1 to 100"),
    (
        "unknown entry key",
        "questions:\n  - question: x\n    colour: red\n",
        "q.yaml:3: entry 1: unknown key 'colour' (allowed: question, id, document, line, answers, answerable)",
    ),
    (
        "unknown top-level key",
        "questoins:\n  - question: x\n",
        "q.yaml:1: unknown top-level key 'questoins' (allowed: corpus, questions, top)",
    ),
    (
        "a python tag",
        'questions:\n  - !!python/object/apply:os.system ["echo pwned"]\n',
        "q.yaml:2: entry 1: must be a mapping with a 'question', not a list",
    ),
    (
        "an alias",
        'questions:\n  - question: &q "What is NATO?"\n    answers: [*q]\n',
        "q.yaml:3:15: YAML aliases (*name) are not allowed in a questions file",
    ),
    # An explicit tag names a type the text is not: it was trusted (exit 70).
    ("top tagged int", "top: !!int abc\nquestions:\n  - question: x\n", "q.yaml:1: 'top' must be a whole number"),
    (
        "line tagged int",
        "questions:\n  - question: x\n    line: !!int '[1, 2]'\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not '[1, 2]' tagged !!int",
    ),
    (
        "answerable tagged bool",
        "questions:\n  - question: x\n    answerable: !!bool maybe\n",
        "q.yaml:3: entry 1: 'answerable' must be true or false, not 'maybe' tagged !!bool",
    ),
    (
        "line of 5,000 digits",
        "questions:\n  - question: x\n    line: " + "1" * 5000 + "\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not a number of 5,000 characters",
    ),
    ("top huge", "top: 1000000\nquestions:\n  - question: x\n", "q.yaml:1: 'top' must be a whole number from 1 to 100"),
    (
        "an empty document",
        "questions:\n  - question: x\n    document: ''\n",
        "q.yaml:3: entry 1: 'document' is empty",
    ),
    (
        "an empty answer",
        "questions:\n  - question: x\n    answers: ['saw', ' ']\n",
        "q.yaml:3: entry 1: 'answers' holds an empty string",
    ),
    (
        "a list as a key",
        "questions:\n  - ? [a, b]\n    : x\n",
        "q.yaml:2: entry 1: a key must be a name, not a list",
    ),
    ("a list as a top-level key", "? [a, b]\n: x\n", "q.yaml:1: a top-level key must be a name, not a list"),
    (
        "an unanswerable entry with answers",
        "questions:\n  - question: x\n    answerable: false\n    answers: [y]\n",
        "q.yaml:3: entry 1: 'answerable: false' with 'answers', which an unanswerable question cannot have",
    ),
    # A list's wrong item named: "must be a list of strings, not a list" said neither.
    (
        "a number among the answers",
        "questions:\n  - question: x\n    answers: [ok, 2014]\n",
        "q.yaml:3: entry 1: 'answers' must be a list of strings (quote a number or yes/no), "
        "not a list whose item 2 is an integer ('2014')",
    ),
    (
        "a word among the lines",
        "questions:\n  - question: x\n    line: [13, x]\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a non-empty list of line numbers, "
        "not a list whose item 2 is a string ('x')",
    ),
    # Said as what YAML made of them: "not a value of another type", and a
    # base-60 `1:30` checked as line 90.
    (
        "a merge key",
        "questions:\n  - question: x\n    <<: {id: y}\n",
        "q.yaml:3: entry 1: a key must be a name, not a merge key (<<)",
    ),
    (
        "a base-60 line",
        "questions:\n  - question: x\n    line: 1:30\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not '1:30', "
        "which YAML reads as a number in base 60",
    ),
    # YAML 1.1's octal: `line: 015` was checked as line 13, `top: 010` as 8.
    (
        "an octal line",
        "questions:\n  - question: x\n    line: 015\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not '015', "
        "which YAML reads as an octal number (write it without the leading 0)",
    ),
    (
        "an octal line in a list",
        "questions:\n  - question: x\n    line: [3, 015]\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a non-empty list of line numbers, "
        "not a list whose item 2 is '015', which YAML reads as an octal number (write it without the leading 0)",
    ),
    (
        "a line with a leading 0 and an 8",
        "questions:\n  - question: x\n    line: 08\n",
        "q.yaml:3: entry 1: 'line' must be a line number or a list of line numbers, not '08', "
        "which YAML reads as text (write it without the leading 0)",
    ),
    ("an octal top", "top: 010\nquestions:\n  - question: x\n", "q.yaml:1: 'top' must be a whole number from 1 to 100"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CHECK_ERRORS], ids=[c[0] for c in CHECK_ERRORS])
def test_bad_questions_file_exits_2_naming_file_and_line(runner, tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(text)
    result = runner.invoke(cli, ["check", "q.yaml"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert error_line(result).startswith(f"natoqa: error: {message}")
    assert Path("q.yaml").read_text() == text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Path("q.yaml").write_bytes(b"\xff\xfequestions: []\n"),
            "q.yaml: not UTF-8 text (byte 0xff at offset 0)",
        ),
        (lambda: None, "q.yaml: no such file"),
        (lambda: Path("q.yaml").mkdir(), "q.yaml: is a folder, not a questions file"),
    ],
    ids=["not UTF-8", "missing", "a folder"],
)
def test_unreadable_questions_file_exits_2(runner, tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    make()
    result = runner.invoke(cli, ["check", "q.yaml"])
    assert (result.exit_code, error_line(result)) == (2, f"natoqa: error: {message}")


def _billion_laughs(levels: int = 12) -> str:
    lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"questions: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast_with_bounded_memory(tmp_path):
    import resource
    import time

    path = tmp_path / "laughs.yaml"
    path.write_text(_billion_laughs())  # 9**12 strings if it were expanded

    def limit_memory():  # 1 GB of address space: expansion would need far more
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    proc = subprocess.run([*NATOQA, "check", str(path)], capture_output=True, preexec_fn=limit_memory, timeout=60)
    elapsed = time.monotonic() - started
    assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (
        2,
        b"",
        f"natoqa: error: {path}:2:10: YAML aliases (*name) are not allowed in a questions file\n",
    )
    assert elapsed < 20


# --- natoqa never changes a user's file, except check --record --in-place -------

QUESTIONS = "questions:\n  - question: Which tool cuts wood?\n    answers: [saw]\n"


def test_check_never_changes_the_questions_file_without_in_place(runner, tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(QUESTIONS)
    corpus = ["--corpus", str(tiny_corpus)]
    before = snapshot(tmp_path / "q.yaml")
    for args in (
        ["check", *corpus, "q.yaml"],
        ["check", *corpus, "q.yaml", "--record"],
        ["check", *corpus, "q.yaml", "--json"],
    ):
        assert invoke(runner, args).exit_code == 0
    assert snapshot(tmp_path / "q.yaml") == before
    result = runner.invoke(cli, ["check", *corpus, "q.yaml", "--record", "-o", "q.yaml"])
    assert (result.exit_code, error_line(result)) == (
        2,
        "natoqa: error: q.yaml: already exists; --record writes only to a new file (or use --in-place)",
    )
    assert snapshot(tmp_path / "q.yaml") == before
    for junit in ("q.yaml", "./q.yaml", str(tmp_path / "q.yaml")):
        result = runner.invoke(cli, ["check", *corpus, "q.yaml", "--junit", junit])
        assert (result.exit_code, error_line(result)) == (
            2,
            f"natoqa: error: {junit}: is a questions file being checked; give --junit another path",
        )
    assert snapshot(tmp_path / "q.yaml") == before
    result = runner.invoke(cli, ["check", *corpus, "q.yaml", "--in-place"], prog_name="natoqa")
    assert (result.exit_code, error_line(result)) == (
        2,
        "natoqa: error: --in-place and --output go with --record (see 'natoqa check --help')",
    )
    assert snapshot(tmp_path / "q.yaml") == before


def test_check_record_in_place_rewrites_only_that_file_atomically(runner, tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(QUESTIONS)
    os.chmod("q.yaml", 0o640)
    result = invoke(runner, ["check", "--corpus", str(tiny_corpus), "q.yaml", "--record", "--in-place"])
    assert result.exit_code == 0
    assert Path("q.yaml").read_text() == (
        "questions:\n  - question: Which tool cuts wood?\n    document: tools\n    line: 3\n    answers: [saw]\n"
    )
    assert oct(Path("q.yaml").stat().st_mode & 0o777) == "0o640"
    # Written through a temporary file and a rename: nothing else is left behind.
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("cache", "xdg-cache", "xdg-data", "tiny")] == [
        "q.yaml"
    ]


def test_jsonl_records_never_hold_raw_line_separators(runner):
    # U+0085, U+2028 and U+2029 break lines for splitlines() and JavaScript.
    question = "Who is the U.S. Defense Secretary?\u2028\u0085\u2029"
    result = invoke(runner, ["ask", "-", "--jsonl"], input=(question + "\n").encode())
    [line] = result.stdout.splitlines()
    assert json.loads(line)["question"].startswith("Who is the U.S. Defense Secretary?")


def test_ctrl_c_while_the_cli_is_still_importing_exits_130_in_one_line(tmp_path):
    # natoqa._entry takes Ctrl-C until natoqa.cli's own handling runs: here a
    # stand-in natoqa.cli interrupts itself while "importing".
    import shutil
    import subprocess
    import sys

    import natoqa._entry

    package = tmp_path / "natoqa"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(natoqa._entry.__file__, package / "_entry.py")
    (package / "cli.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\ndef main():\n    return 0\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from natoqa._entry import main; main()",
            tmp_path,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 130
    assert proc.stderr == "natoqa: error: interrupted\n"


def test_the_entry_point_hands_ctrl_c_back_to_the_cli():
    import subprocess
    import sys

    code = (
        "import signal; import natoqa._entry as e; import natoqa.cli as c; "
        "c.main = lambda: print(signal.getsignal(signal.SIGINT) is signal.default_int_handler); e.main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "True"


# --- reports and recorded files: never written over what is not theirs -----

WOOD_QUESTIONS = 'questions:\n  - question: "Which tool cuts wood?"\n    answers: ["nothing like it"]\n'


def _run_check(tiny_corpus, questions, *args, **kwargs):
    return subprocess.run(
        [*NATOQA, "check", str(questions), "--corpus", str(tiny_corpus), *args],
        capture_output=kwargs.pop("capture_output", True),
        text=True,
        timeout=60,
        **kwargs,
    )


def test_junit_into_a_fifo_is_written_into_it_not_over_it(tiny_corpus, tmp_path):
    import stat
    import threading

    questions = tmp_path / "q.yaml"
    questions.write_text(WOOD_QUESTIONS)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    done = _run_check(tiny_corpus, questions, "--junit", str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 1, done.stderr
    assert got and got[0].startswith('<?xml version="1.0"')
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # a FIFO still, not a plain file


def test_junit_down_a_pipe_whose_reader_left_exits_141_quietly(tiny_corpus, tmp_path):
    # The broken pipe became "cannot write: Broken pipe", exit 2.
    questions = tmp_path / "q.yaml"
    questions.write_text(WOOD_QUESTIONS)
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [*NATOQA, "check", str(questions), "--corpus", str(tiny_corpus), "--junit", "/dev/stdout"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


def test_junit_to_dev_stdout_goes_down_the_pipe_or_is_refused_over_a_file(tiny_corpus, tmp_path):
    questions = tmp_path / "q.yaml"
    questions.write_text(WOOD_QUESTIONS)
    done = _run_check(tiny_corpus, questions, "--junit", "/dev/stdout")
    assert done.returncode == 1, done.stderr
    # The pipe gets the XML alone (the report after it made it unreadable);
    # the report goes to stderr. With --json, both would be stdout: refused.
    import xml.etree.ElementTree as ET

    assert ET.fromstring(done.stdout).get("failures") == "1"
    assert "1 failed" in done.stderr
    done = _run_check(tiny_corpus, questions, "--junit", "/dev/stdout", "--json")
    assert (done.returncode, done.stdout) == (2, "")
    assert "--junit names standard output, where --json writes" in done.stderr
    # Redirected to a file, /dev/stdout is that file: replacing it would
    # lose the report natoqa writes to it.
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        done = _run_check(
            tiny_corpus,
            questions,
            "--junit",
            "/dev/stdout",
            stdout=stdout,
            stderr=subprocess.PIPE,
            capture_output=False,
        )
    assert done.returncode == 2
    assert "standard output" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("INDEX.md", "is a file of the corpus"),
        ("birds.txt", "is a file of the corpus"),
        ("folder/", "is a folder; give a file path"),
        ("", "--junit needs a file path"),
    ],
)
def test_junit_refuses_a_corpus_file_a_folder_or_nothing(runner, tiny_corpus, tmp_path, target, message):
    questions = tmp_path / "q.yaml"
    questions.write_text(WOOD_QUESTIONS)
    before = snapshot(tiny_corpus)
    path = f"{tiny_corpus}/{target}" if target else ""
    result = invoke(runner, ["check", str(questions), "--corpus", str(tiny_corpus), "--junit", path])
    assert (result.exit_code, result.stdout) == (2, "")
    assert message in error_line(result)
    assert snapshot(tiny_corpus) == before


@pytest.mark.parametrize(
    "args",
    [["--min-pass-rate", "nan"], ["--record", "--junit", "r.xml"], ["--record", "--json"], ["--record", "-o", ""]],
)
def test_check_options_that_cannot_mean_anything_are_usage_errors(runner, tiny_corpus, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(WOOD_QUESTIONS)
    result = invoke(runner, ["check", "q.yaml", "--corpus", str(tiny_corpus), *args])
    assert (result.exit_code, result.stdout) == (2, "")
    assert error_line(result).startswith("natoqa: error: ")
    assert not Path("r.xml").exists() and Path("q.yaml").read_text() == WOOD_QUESTIONS


@pytest.mark.parametrize("args", [["--junit", "nodir/r.xml"], ["--record", "-o", "nodir/new.yaml"]])
def test_a_report_or_record_into_a_missing_folder_names_the_path(runner, tiny_corpus, tmp_path, monkeypatch, args):
    # It said "cannot write output", naming nothing, and -o had printed the
    # change it then failed to write.
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(RECORDABLE_WOOD)
    result = invoke(runner, ["check", "q.yaml", "--corpus", str(tiny_corpus), *args])
    assert (result.exit_code, error_line(result)) == (
        2,
        f"natoqa: error: {args[-1]}: cannot write: No such file or directory",
    )
    if "--record" in args:
        assert result.stdout == ""
    assert Path("q.yaml").read_text() == RECORDABLE_WOOD and not Path("nodir").exists()


# A case --record fills in (WOOD_QUESTIONS' expected answer is in no quote).
RECORDABLE_WOOD = 'questions:\n  - question: "Which tool cuts wood?"\n'


def test_recorded_ids_read_back_as_the_same_strings(runner, tmp_path):
    # "2024" and "no" read back as a number and false, "a #b" as "a":
    # the recorded file failed its next check.
    root = make_corpus(
        tmp_path / "c",
        {
            "2024.txt": "Budget\n\nThe council approved the budget in March.\n",
            "no.txt": "Storks\n\nWhite storks nest on chimneys.\n",
            "a #b.txt": "Tools\n\nA hammer drives nails.\n",
            # Characters YAML cannot hold raw, or reads as a line break: the
            # recorded file was refused ("unacceptable character #x007f").
            "bud\x7fget.txt": "Rivers\n\nThe Danube flows into the Black Sea.\n",
            "line\u2028sep.txt": "Moons\n\nPhobos orbits Mars.\n",
        },
        index="- [A](2024.txt)\n- [B](no.txt)\n- [C](a%20%23b.txt)\n- [D](bud%7Fget.txt)\n- [E](line%E2%80%A8sep.txt)\n",
    )
    questions = tmp_path / "q.yaml"
    questions.write_text(
        "questions:\n  - question: Who approved the budget?\n  - question: Where do storks nest?\n"
        "  - ? question\n    : What drives nails?\n"
        "  - question: Where does the Danube flow?\n  - question: Which moon orbits Mars?\n"
    )
    result = invoke(runner, ["check", str(questions), "--corpus", str(root), "--record", "--in-place"])
    assert result.exit_code == 0, result.stderr
    text = questions.read_text()
    assert 'document: "2024"' in text and 'document: "no"' in text and 'document: "a #b"' in text
    assert '\n    document: "a #b"\n' in text  # the entry's column, not the explicit key's
    assert 'document: "bud\\u007fget"' in text and 'document: "line\\u2028sep"' in text
    result = invoke(runner, ["check", str(questions), "--corpus", str(root), "--json"])
    assert result.exit_code == 0, result.stderr
    cases = json.loads(result.stdout)["files"][0]["cases"]
    assert [c["expected"]["document"] for c in cases] == ["2024", "no", "a #b", "bud\x7fget", "line\u2028sep"]


def test_junit_holds_no_character_xml_cannot(tmp_path):
    import xml.etree.ElementTree as ET

    root = make_corpus(tmp_path / "c", {"a.txt": "Storks\n\nWhite storks \ufffe nest on chimneys \uffff in spring.\n"})
    questions = tmp_path / "q\udcff.yaml"  # a file name that is not UTF-8
    with open(os.fsencode(questions), "w") as f:
        f.write('questions:\n  - question: "Where do storks nest?"\n    answers: [x]\n')
    junit = tmp_path / "report.xml"
    done = subprocess.run(
        [*NATOQA, "check", os.fsencode(questions), "--corpus", str(root), "--junit", str(junit)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    [failure] = ET.parse(junit).getroot().iter("failure")
    assert "White storks \ufffd nest on chimneys \ufffd in spring." in failure.get("message")


def test_a_single_file_corpus_is_cached_with_the_cache_below_its_folder(runner, tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("Budget\n\nThe council approved the budget in March.\n")
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(tmp_path / ".cache" / "natoqa"))
    result = invoke(runner, ["ask", "--corpus", str(notes), "-q", "Who approved the budget?"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert any(p.name.startswith("index-") for p in (tmp_path / ".cache" / "natoqa").iterdir())


def test_a_new_report_gets_the_permissions_of_any_new_file(runner, tiny_corpus, tmp_path):
    questions = tmp_path / "q.yaml"
    questions.write_text(RECORDABLE_WOOD)
    old = os.umask(0o022)
    try:
        invoke(runner, ["check", str(questions), "--corpus", str(tiny_corpus), "--junit", str(tmp_path / "r.xml")])
        invoke(
            runner, ["check", str(questions), "--corpus", str(tiny_corpus), "--record", "-o", str(tmp_path / "n.yaml")]
        )
    finally:
        os.umask(old)
    assert (tmp_path / "r.xml").stat().st_mode & 0o777 == 0o644  # not the temporary file's 0600
    assert (tmp_path / "n.yaml").stat().st_mode & 0o777 == 0o644


def test_a_corpus_path_that_is_not_utf8_is_cached(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"dir\xff")
    os.mkdir(folder)
    with open(os.path.join(folder, b"notes.txt"), "w") as f:
        f.write("Budget\n\nThe council approved the budget in March.\n")
    env = dict(os.environ, NATOQA_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [*NATOQA, "ask", "--corpus", os.path.join(folder, b"notes.txt"), "-q", "Who approved the budget?"]
    done = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    assert any(p.name.startswith("where-") for p in (tmp_path / "cache").iterdir())


def test_a_single_file_corpus_whose_name_is_not_utf8_answers_in_valid_json(tmp_path):
    # Its id and title come from the file name: the cache key could not
    # encode them (exit 70), and JSON wrote the name's raw byte.
    path = os.path.join(os.fsencode(tmp_path), b"b\xffd.txt")
    with open(path, "w") as f:
        f.write("The council approved the budget in March.\n")
    env = dict(os.environ, NATOQA_CACHE_DIR=str(tmp_path / "cache"))
    for args in (["-q"], ["--json"], ["--jsonl", "--no-cache"]):
        done = subprocess.run(
            [*NATOQA, "ask", "--corpus", path, *args, "Who approved the budget?"],
            capture_output=True,
            env=env,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0, b""), args
    record = json.loads(done.stdout.decode("utf-8"))  # valid UTF-8
    assert record["answers"][0]["document"] == "b\udcffd"
    assert os.fsencode(record["answers"][0]["path"]) == path
    done = subprocess.run([*NATOQA, "docs", "--json", "--corpus", path], capture_output=True, env=env, timeout=60)
    assert json.loads(done.stdout.decode("utf-8"))[0]["title"] == "b\udcffd"


@pytest.mark.parametrize("name", ["INDEX.md", "a.txt"])
@pytest.mark.parametrize("cached", [False, True])
def test_a_fifo_where_a_corpus_file_was_is_refused_not_waited_on(tmp_path, name, cached):
    # Checking a cached index against the files opened them: a FIFO put in
    # place of one waited for a writer forever.
    root = make_corpus(tmp_path / "c", {"a.txt": "Budget\n\nThe council approved the budget in March.\n"})
    env = dict(os.environ, NATOQA_CACHE_DIR=str(tmp_path / "cache"))
    ask = [*NATOQA, "ask", "--corpus", str(root), "-q", "Who approved the budget?"]
    if cached:
        assert subprocess.run(ask, capture_output=True, env=env, timeout=60).returncode == 0
    (root / name).unlink()
    os.mkfifo(root / name)
    done = subprocess.run(ask, capture_output=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (3, b"")
    assert done.stderr.decode() == (
        f"natoqa: error: {root / name}: not a regular file (a pipe or a device); natoqa reads text files\n"
    )


def test_a_device_as_the_corpus_is_refused_not_read(runner):
    result = invoke(runner, ["ask", "--corpus", "/dev/zero", "-q", "who"])
    assert (result.exit_code, error_line(result)) == (
        3,
        "natoqa: error: /dev/zero: not a regular file (a pipe or a device); natoqa reads text files",
    )


def test_a_corpus_named_by_white_space_is_named_visibly(runner, monkeypatch):
    monkeypatch.setenv("NATOQA_CORPUS", " ")
    result = invoke(runner, ["ask", "what cuts wood"])
    assert (result.exit_code, error_line(result)) == (3, "natoqa: error: corpus not found: ' '")


@pytest.mark.parametrize("command", [["ask", "what cuts wood"], ["docs"], ["show", "tools:1"], ["check", "q.yaml"]])
def test_an_empty_corpus_option_is_refused_not_the_seed_article(runner, command):
    # `--corpus "$DIR"` with DIR unset answered from the seed article (and a
    # gate could pass against it); an empty NATOQA_CORPUS is still unset.
    result = invoke(runner, [*command, "--corpus", ""])
    assert (result.exit_code, result.stdout) == (2, "")
    assert error_line(result).startswith(
        "natoqa: error: Invalid value for '--corpus': needs a corpus path, not an empty one"
    )


def test_a_questions_file_whose_size_says_nothing_is_cut_at_the_limit(runner, monkeypatch):
    # A pipe (and /dev/zero, which never ends) has size 0: it was read whole,
    # and `natoqa check /dev/zero` took all the memory there was.
    monkeypatch.setattr("natoqa.check.MAX_FILE_BYTES", 1024)
    read, write = os.pipe()
    os.write(write, b"# " + b"x" * 2046)
    os.close(write)
    try:
        result = runner.invoke(cli, ["check", f"/dev/fd/{read}"])
    finally:
        os.close(read)
    assert (result.exit_code, error_line(result)) == (
        2,
        f"natoqa: error: /dev/fd/{read}: over the limit of 1,024 bytes for a questions file",
    )


@pytest.mark.parametrize(
    "args",
    [["-", Q], [Q, "-"], ["--", "-", "--jsonl"], ["-", "-"], ["--jsonl", "-", "Who", "is", "Lloyd", "Austin?"]],
    ids=["dash first", "dash last", "option after --", "two dashes", "dash before words"],
)
def test_dash_with_a_question_is_refused_not_asked_as_one(runner, args):
    # '-' joined to the other words made one question ("- Who is Jens
    # Stoltenberg?"), answered with exit 0 while the questions on stdin
    # went unread.
    result = invoke(runner, ["ask", *args], input="What does Putin want?\n")
    assert (result.exit_code, result.stdout) == (2, "")
    assert error_line(result).startswith(
        "natoqa: error: '-' reads the questions from stdin and takes no question with it"
        " (quote a question that starts or ends with '-') (see '"
    )


def test_a_dash_inside_a_question_is_a_word(runner):
    result = invoke(runner, ["ask", "--json", "Who", "is", "Jens", "-", "Stoltenberg?"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["question"] == "Who is Jens - Stoltenberg?"


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("cache", [[], ["--no-cache"]], ids=["cached", "no cache"])
def test_a_document_edited_during_a_batch_stops_it(tmp_path, jobs, cache):
    # The batch answered from the text it had read: after an edit that
    # moved the lines, its quotes cited lines that no longer held them, and
    # the batch exited 0.
    root = make_corpus(
        tmp_path / "c", {"a.txt": "The budget was approved by the board.\n\nThe office moves to Leeds.\n"}
    )
    from natoqa.session import SERIAL_FIRST

    asked = b"Who approved the budget?\n"
    first = SERIAL_FIRST + 2  # with -j 2, workers answer the last ones
    if not cache:  # a warm cache: the batch reads the document's lines only when it quotes them
        subprocess.run([*NATOQA, "ask", "--corpus", str(root), "x"], capture_output=True, check=False)
    proc = subprocess.Popen(
        [*NATOQA, "ask", "-", "--jsonl", "-j", jobs, "--corpus", str(root), *cache],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(asked * first)
    proc.stdin.flush()
    answered = [json.loads(proc.stdout.readline()) for _ in range(first)]
    assert all(r["answers"][0]["quote"]["start_line"] == 1 for r in answered)
    (root / "a.txt").write_text(
        "A new first line.\nThe budget was approved by the board.\n\nThe office moves to Leeds.\n"
    )
    out, err = proc.communicate(b"Where does the office move?\n" + asked, timeout=60)
    assert (proc.returncode, out) == (3, b"")
    assert err.decode().endswith("a.txt: the document changed while natoqa was answering; run again\n")


def test_a_document_saved_unchanged_during_a_batch_does_not_stop_it(tmp_path):
    # Only its times move (`touch`, a checkout): the text the batch quotes
    # is still the file's, so the batch goes on.
    root = make_corpus(tmp_path / "c", {"a.txt": "The budget was approved by the board.\n"})
    proc = subprocess.Popen(
        [*NATOQA, "ask", "-", "-q", "-j", "1", "--corpus", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(b"Who approved the budget?\n")
    proc.stdin.flush()
    assert proc.stdout.readline().endswith(b":1:1: The budget was approved by the board.\n")
    later = time.time() + 5
    os.utime(root / "a.txt", (later, later))
    out, err = proc.communicate(b"Who approved the budget?\n", timeout=60)
    assert (proc.returncode, out.count(b":1:1: The budget"), err) == (0, 1, b"")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_non_blocking_stdin_is_read_to_its_end(jobs):
    # A stdin left O_NONBLOCK (by the program that made the pipe) read as
    # ended whenever no line had arrived yet: the batch answered the first
    # question and exited 0, the rest unread. (Half a line then arrives too.)
    read, write = os.pipe()
    os.set_blocking(read, False)
    proc = subprocess.Popen(
        [*NATOQA, "ask", "-", "--jsonl", "-j", jobs], stdin=read, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.close(read)
    try:
        os.write(write, f"{Q}\n".encode())
        time.sleep(1.0)  # long enough for the first answer: natoqa then finds no line waiting
        os.write(write, b"Who is Jens ")
        time.sleep(0.5)
        os.write(write, b"Stoltenberg?\n" + f"{Q}\n".encode() * 12)
    except BrokenPipeError:
        pass  # natoqa took the pipe for ended and left: the output says what it answered
    finally:
        os.close(write)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, b"")
    assert [json.loads(line)["question"] for line in out.splitlines()] == [Q] * 14


@pytest.mark.parametrize("args", [["--jsonl", "-j", "1"], ["--jsonl", "-j", "2"], ["--json"], []])
def test_a_non_blocking_stdout_waits_for_a_slow_reader(args):
    # A stdout left O_NONBLOCK failed the first write that found the pipe
    # full: "cannot write output: write could not complete without
    # blocking", exit 2, the output cut.
    read, write = os.pipe()
    os.set_blocking(write, False)
    proc = subprocess.Popen([*NATOQA, "ask", "-", *args], stdin=subprocess.PIPE, stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    proc.stdin.write(_questions(300))
    proc.stdin.close()
    time.sleep(1.5)  # the reader is slow: the pipe fills
    out = b""
    while chunk := os.read(read, 65536):
        out += chunk
    os.close(read)
    assert (proc.wait(timeout=60), proc.stderr.read()) == (0, b"")
    if args == ["--json"]:
        assert len(json.loads(out)) == 300
    elif args:
        assert len(out.splitlines()) == 300
    else:
        assert out.count(b"nato-bolsters-eastern-flank.txt:15:1") == 300
