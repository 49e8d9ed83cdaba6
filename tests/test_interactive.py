"""The interactive prompt, driven as a person drives it: through a pseudo-terminal.

The screen is what the terminal shows: the bytes natoqa wrote, with the
escape codes that style them taken out and line ends made plain.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys

import pexpect
import pytest

from natoqa.corpus import load_corpus
from natoqa.interactive import Repl, history_path
from natoqa.session import Session
from natoqa.store import load_index

from .conftest import make_corpus

PROMPT = "natoqa> "
# CSI sequences (styles, bracketed paste mode, cursor moves), OSC 8 links, keypad modes.
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]")


def screen(raw: str) -> list[str]:
    text = ESCAPE.sub("", raw).replace("\r\n", "\n").replace("\r", "")
    return [line.rstrip() for line in text.split("\n")]


@pytest.fixture
def spawn(tmp_path):
    """Start natoqa on a 100-column pseudo-terminal; everything it writes is kept."""
    children = []

    def start(*args, env=None):
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
        environ.update(TERM="xterm-256color", **(env or {}))
        child = pexpect.spawn(
            sys.executable,
            ["-m", "natoqa", *args],
            env=environ,
            cwd=str(tmp_path),
            # Wide enough that no tmp_path (pytest-NNN grows) wraps a reference line.
            dimensions=(40, 250),
            encoding="utf-8",
            timeout=30,
        )
        child.logfile_read = io.StringIO()
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def score(corpus, question: str) -> str:
    """The score as the screen shows it, from the library (ranking is tuned elsewhere)."""
    session = Session(load_index(load_corpus(str(corpus)), use_cache=False))
    return f"{session.answer(question).answers[0].score:.2f}"


def ask(child, line: str) -> None:
    child.sendline(line)
    child.expect_exact(PROMPT)


def test_two_questions_a_command_and_quit(spawn, tiny_corpus, tmp_path):
    child = spawn(env={"NATOQA_CORPUS": str(tiny_corpus)})
    child.expect_exact(PROMPT)
    ask(child, "Which bird has the longest wingspan?")
    ask(child, "what cuts wood")
    ask(child, ":docs")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    birds, tools = tiny_corpus / "birds.txt", tiny_corpus / "tools.txt"
    assert screen(child.logfile_read.getvalue()) == [
        "Test corpus: 2 documents, 5 passages. Ask a question; :help lists commands, Ctrl-D leaves.",
        "natoqa> Which bird has the longest wingspan?",
        "“The albatross has the longest wingspan of any living bird.”",
        f"{birds}:3:1  Birds  score {score(tiny_corpus, 'Which bird has the longest wingspan?')}",
        ">3 │ The albatross has the longest wingspan of any living bird.",
        " 4 │ It glides for hours.",
        "",
        "natoqa> what cuts wood",
        "“A saw cuts wood.”",
        f"{tools}:3:24  Tools  score {score(tiny_corpus, 'what cuts wood')}",
        ">3 │ A hammer drives nails. A saw cuts wood.",
        "",
        "natoqa> :docs",
        f"3  {birds}  Birds",
        f"2  {tools}  Tools",
        "natoqa> :quit",
        "",
    ]
    # On a terminal the quote is styled: bold (its short answer reversed), and
    # underlined in the passage; never a fixed colour.
    raw = {ESCAPE.sub("", line): line for line in child.logfile_read.getvalue().split("\r\n")}
    quote = raw["“A saw cuts wood.”"]
    assert quote.startswith("\x1b[1m“")
    assert set(re.findall(r"\x1b\[[0-9;]*m", quote)) <= {"\x1b[0m", "\x1b[1m", "\x1b[1;7m"}
    passage = raw[">3 │ A hammer drives nails. A saw cuts wood."]
    assert "\x1b[2m>3 │ \x1b[0mA hammer drives nails. \x1b[4m" in passage
    assert set(re.findall(r"\x1b\[[0-9;]*m", passage)) <= {
        "\x1b[0m",
        "\x1b[2m",
        "\x1b[1m",
        "\x1b[4m",
        "\x1b[1;4m",
        "\x1b[4;7m",
        "\x1b[1;4;7m",
    }
    saved = (tmp_path / "xdg-data" / "natoqa" / "history").read_text().splitlines()
    assert saved == ["Which bird has the longest wingspan?", "what cuts wood", ":docs", ":quit"]


def test_the_prompt_answers_from_a_document_edited_while_it_is_open(spawn, tiny_corpus):
    child = spawn(env={"NATOQA_CORPUS": str(tiny_corpus)})
    child.expect_exact(PROMPT)
    ask(child, "what cuts wood")
    tools = tiny_corpus / "tools.txt"
    tools.write_text("Tools\n\nA drill makes holes.\n\nA hammer drives nails. A saw cuts wood.\n", encoding="utf-8")
    ask(child, "what cuts wood")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    shown = screen(child.logfile_read.getvalue())
    at = shown.index("natoqa> what cuts wood", 2)
    assert shown[at + 1 : at + 3] == [
        "the corpus changed; now Test corpus: 2 documents, 6 passages",
        "“A saw cuts wood.”",
    ]
    assert shown[at + 3].startswith(f"{tools}:5:24  Tools  score ")


def test_a_terminal_said_to_be_0_columns_wide_still_shows_answers(spawn, tiny_corpus):
    # COLUMNS=0 made every line of human output, banner and :help included, empty.
    child = spawn("ask", "what cuts wood", env={"NATOQA_CORPUS": str(tiny_corpus), "COLUMNS": "0"})
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    lines = screen(child.logfile_read.getvalue())
    assert lines[0] == "“A saw cuts wood.”"
    assert ">3 │ A hammer drives nails. A saw cuts wood." in lines


def test_the_prompt_shows_a_titles_control_characters(spawn, tmp_path):
    # The banner and :docs sent a corpus title's escape sequences raw.
    root = make_corpus(
        tmp_path / "c",
        {"a.txt": "Tools\n\nA saw cuts wood.\n"},
        index='---\ntitle: "Evil \\e(0"\n---\n- [Bad \x1bc](a.txt)\n',
    )
    child = spawn(env={"NATOQA_CORPUS": str(root), "NO_COLOR": "1"})
    child.expect_exact(PROMPT)
    ask(child, ":docs")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    raw = child.logfile_read.getvalue()
    assert "\x1b(" not in raw and "\x1bc" not in raw
    lines = screen(raw)
    assert lines[0].startswith("Evil ␛(0: 1 document, 2 passages.")
    assert lines[2] == f"2  {root / 'a.txt'}  Bad ␛c"


def test_history_is_kept_across_sessions_and_ctrl_d_leaves(spawn, tiny_corpus):
    env = {"NATOQA_CORPUS": str(tiny_corpus), "NO_COLOR": "1"}
    first = spawn("ask", env=env)
    first.expect_exact(PROMPT)
    ask(first, "can penguins fly")
    first.sendeof()
    first.expect(pexpect.EOF)
    first.close()
    assert first.exitstatus == 0

    second = spawn(env=env)
    second.expect_exact(PROMPT)
    second.send("\x1b[A")  # Up: the question from the last session comes back
    second.send("\r")
    second.expect_exact(PROMPT)
    ask(second, ":top 0")
    ask(second, ":explain")
    second.send("half a quest")
    second.expect_exact("half a quest")  # readline has the keys; now interrupt it
    second.sendintr()  # Ctrl-C: the line is dropped, the prompt comes back
    second.expect_exact(PROMPT)
    second.sendeof()
    second.expect(pexpect.EOF)
    second.close()
    assert second.exitstatus == 0
    raw = second.logfile_read.getvalue()
    assert "\x1b[1m" not in raw and "\x1b[4m" not in raw  # NO_COLOR: no styles at all
    lines = screen(raw)
    assert lines[1:6] == [
        "natoqa> can penguins fly",
        "“Penguins cannot fly.”",
        f"{tiny_corpus / 'birds.txt'}:6:1  Birds  score {score(tiny_corpus, 'can penguins fly')}",
        ">6 │ Penguins cannot fly. They swim in cold southern seas.",
        "",
    ]
    assert lines[6:] == [
        "natoqa> :top 0",
        "natoqa: error: :top takes a whole number from 1 to 100, not '0'",
        "natoqa> :explain",
        "explanations on",
        "natoqa> half a quest",
        "natoqa>",  # Ctrl-D at an empty prompt
        "",
    ]


# The prompt's commands without a terminal: the same Repl, writing to strings.


@pytest.fixture
def repl(tiny_corpus):
    from rich.console import Console

    def console():
        return Console(file=io.StringIO(), width=100, color_system=None, highlight=False, markup=False)

    session = Session(load_index(load_corpus(str(tiny_corpus)), use_cache=False))
    return Repl(session, console(), console())


def out(console) -> list[str]:
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def test_docs_shows_a_file_name_with_a_line_break_in_its_row(tmp_path):
    # As `natoqa docs` does: the newline split the row, the title (the file
    # name) starting a line of its own.
    from rich.console import Console

    doc = tmp_path / "two\nlines.txt"
    doc.write_text("The council approved the budget in March.\n")
    console = Console(file=io.StringIO(), width=200, color_system=None, highlight=False, markup=False)
    repl = Repl(Session(load_index(load_corpus(str(doc)), use_cache=False)), console, console)
    repl.handle(":docs")
    assert out(console) == [f"1  {tmp_path}/two\u240alines.txt  two\u240alines"]


def test_top_changes_how_many_answers(repl):
    repl.handle(":top 3")
    assert repl.session.top == 3
    repl.handle(":top")
    assert out(repl.err) == ["showing 3 answer(s) per question", "showing 3 answer(s) per question"]


@pytest.mark.parametrize("arg", ["\u00b2", "1" * 5000, "-1", "3.0"])
def test_top_refuses_what_is_not_a_small_whole_number(repl, arg):
    # "²" passes str.isdigit() but not int(); 5,000 digits pass neither
    # int()'s limit: both ended the session with an internal error.
    repl.handle(f":top {arg}")
    assert repl.session.top == 1 and not repl.done
    # (The message wraps at the console's width: compared without breaks.)
    assert "".join(out(repl.err)).replace("not'", "not '") == (
        f"natoqa: error: :top takes a whole number from 1 to 100, not {arg!r}"
    )


def test_json_prints_the_record_ask_json_prints(repl):
    repl.handle(":json")
    repl.handle("what cuts wood")
    data = json.loads(repl.console.file.getvalue())
    assert data["question"] == "what cuts wood"
    assert data["answers"][0]["quote"]["text"] == "A saw cuts wood."
    repl.handle(":j")  # a unique prefix is enough
    assert out(repl.err) == ["JSON output on", "JSON output off"]


def test_on_and_off_set_a_toggle_and_other_arguments_are_refused(repl):
    # The argument was ignored: `:json off` with JSON off turned it on, and
    # `:quit now` or `:docs birds` did what the bare command does.
    repl.handle(":json off")
    repl.handle(":json on")
    repl.handle(":j ON")
    repl.handle(":explain off")
    assert (repl.json, repl.session.explain) == (True, False)
    repl.handle(":json maybe")
    repl.handle(":quit now")
    repl.handle(":docs birds")
    assert (repl.json, repl.done) == (True, False)
    assert out(repl.console) == []
    assert out(repl.err) == [
        "JSON output off",
        "JSON output on",
        "JSON output on",
        "explanations off",
        "natoqa: error: :json takes on, off or nothing (to turn it over), not 'maybe'",
        "natoqa: error: :quit takes no argument, not 'now'",
        "natoqa: error: :docs takes no argument, not 'birds'",
    ]


def test_explain_adds_the_numbers(repl):
    repl.handle(":explain")
    repl.handle("what cuts wood")
    lines = out(repl.console)
    assert lines[0] == "“A saw cuts wood.”"
    # Found by its text, not by its line number: the reference line above
    # it holds the corpus's temporary path, which wraps when it is long.
    why = [i for i, line in enumerate(lines) if line.startswith("Why this passage: ")]
    assert why and why[0] > 1
    assert "Question terms" in lines[why[0] :]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            ":frobnicate",
            "natoqa: error: unknown command ':frobnicate'; the commands are :top :explain :json :docs :help :quit",
        ),
        (":top many", "natoqa: error: :top takes a whole number from 1 to 100, not 'many'"),
        ("what\x07 cuts", "natoqa: error: the question holds a control character (U+0007) at column 5"),
    ],
)
def test_mistakes_are_one_line_and_the_prompt_goes_on(repl, line, message):
    repl.handle(line)
    assert out(repl.err) == [message]
    assert out(repl.console) == []
    assert not repl.done


def test_help_lists_every_command_with_its_state(repl):
    repl.handle(":help")
    assert out(repl.err) == [
        "Type a question and press Enter. Commands:",
        "  :top N     show N answers per question (now 1)",
        "  :explain   show why each passage and sentence won (now off; or :explain on|off)",
        "  :json      print the JSON record instead (now off; or :json on|off)",
        "  :docs      list the corpus documents",
        "  :help      this help",
        "  :quit      leave (Ctrl-D does too)",
    ]


def test_quit_and_exit_end_the_loop(repl):
    repl.handle(":exit")
    assert repl.done


@pytest.mark.parametrize(
    ("line", "done", "explain"), [(":exi", True, False), (":ex", False, True), (":e", False, True)]
)
def test_a_prefix_of_exit_alone_leaves_and_e_stays_explain(repl, line, done, explain):
    # `:exi` was an unknown command, though a unique prefix is enough.
    repl.handle(line)
    assert (repl.done, repl.session.explain) == (done, explain)
    assert not any("unknown command" in line for line in out(repl.err))


def test_history_lives_in_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert history_path() == tmp_path / "data" / "natoqa" / "history"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == tmp_path / ".local" / "share" / "natoqa" / "history"


def test_a_relative_xdg_data_home_is_ignored(spawn, tiny_corpus, tmp_path):
    # As the XDG spec says, and as the cache's XDG_CACHE_HOME is: taken as
    # given, it wrote natoqa/history into the folder the prompt was opened in.
    child = spawn(env={"NATOQA_CORPUS": str(tiny_corpus), "XDG_DATA_HOME": "data", "HOME": str(tmp_path / "home")})
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "home" / ".local" / "share" / "natoqa" / "history").read_text().splitlines()[-1] == ":quit"


def test_ask_without_a_question_reads_a_pipe(runner, tiny_corpus):
    from natoqa.cli import cli

    result = runner.invoke(cli, ["ask", "--corpus", str(tiny_corpus), "-q"], input="what cuts wood\n")
    assert result.exit_code == 0
    assert result.stdout == f"{tiny_corpus / 'tools.txt'}:3:24: A saw cuts wood.\n"


# A prompt stays open while its user edits the documents: each question is
# answered from the corpus as its files are then, never from lines that moved.


def _reopening_repl(root, use_cache: bool, before_prompt=None):
    from rich.console import Console

    from natoqa.store import open_index

    def console():
        return Console(file=io.StringIO(), width=200, color_system=None, highlight=False, markup=False)

    calls = []

    def reopen():
        calls.append(1)
        return open_index(str(root), use_cache=use_cache), None

    session = Session(open_index(str(root), use_cache=use_cache))
    if before_prompt is not None:
        before_prompt()  # after the corpus was read, before the prompt looks at its files
    loop = Repl(session, console(), console(), reopen)
    return loop, calls


def _last_json(loop) -> dict:
    text = loop.console.file.getvalue()
    return json.loads(text[text.rindex('{\n  "question"') :])


@pytest.mark.parametrize("use_cache", [True, False])
def test_an_edited_document_is_answered_as_it_is_now(tiny_corpus, use_cache):
    loop, calls = _reopening_repl(tiny_corpus, use_cache)
    loop.handle(":json")
    loop.handle("What does a saw cut?")
    first = _last_json(loop)["answers"][0]["quote"]
    assert (first["start_line"], first["text"]) == (3, "A saw cuts wood.")
    loop.handle("What does a saw cut?")
    assert calls == []  # nothing changed: nothing read again
    tools = tiny_corpus / "tools.txt"
    tools.write_text("Tools\n\nA drill makes holes.\n\nA hammer drives nails. A saw cuts wood.\n", encoding="utf-8")
    loop.handle("What does a saw cut?")
    quote = _last_json(loop)["answers"][0]["quote"]
    assert (quote["start_line"], quote["text"]) == (5, "A saw cuts wood.")
    assert tools.read_text(encoding="utf-8").splitlines()[quote["start_line"] - 1].endswith(quote["text"])
    assert calls == [1]
    assert out(loop.err)[-1] == "the corpus changed; now Test corpus: 2 documents, 6 passages"


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_document_edited_while_the_corpus_was_read_is_answered_as_it_is_now(tiny_corpus, use_cache):
    # The edit came after the document was read but before the prompt took
    # the files' signatures (while a large corpus loads, or --dense embeds
    # it): the answer's own check found the change, and every question
    # after met "the document changed ...; run again", the corpus never
    # opened again since the signatures the prompt compares said nothing.
    tools = tiny_corpus / "tools.txt"

    def edit():
        tools.write_text("Tools\n\nA drill makes holes.\n\nA hammer drives nails. A saw cuts wood.\n", encoding="utf-8")

    loop, calls = _reopening_repl(tiny_corpus, use_cache, before_prompt=edit)
    loop.handle(":json")
    for _ in range(2):
        loop.handle("What does a saw cut?")
        quote = _last_json(loop)["answers"][0]["quote"]
        assert (quote["start_line"], quote["text"]) == (5, "A saw cuts wood.")
    assert calls == [1]
    assert out(loop.err)[-2:] == ["JSON output on", "the corpus changed; now Test corpus: 2 documents, 6 passages"]


def test_a_corpus_broken_by_an_edit_is_said_and_answered_again_once_mended(tiny_corpus):
    loop, calls = _reopening_repl(tiny_corpus, True)
    index_md = tiny_corpus / "INDEX.md"
    listing = index_md.read_text(encoding="utf-8")
    index_md.write_text(listing + "- [Gone](gone.txt)\n", encoding="utf-8")
    loop.handle("What does a saw cut?")
    assert loop.console.file.getvalue() == ""  # no answer from the corpus of before
    message = " ".join(out(loop.err))  # one line, wrapped at the console's width
    assert message.startswith("natoqa: error: the corpus changed and cannot be loaded: ") and "gone.txt" in message
    index_md.write_text(listing.replace("# Test corpus", "# Mended corpus"), encoding="utf-8")
    loop.handle("What does a saw cut?")
    assert "A saw cuts wood." in loop.console.file.getvalue()
    assert out(loop.err)[-1] == "the corpus changed; now Mended corpus: 2 documents, 5 passages"
    assert len(calls) == 2


def test_an_error_naming_a_path_with_a_line_break_is_one_line(tiny_corpus):
    # A link's %0A is a newline in the file name; the error named it as it
    # was, in two lines, where the command line's errors show it as ␊.
    loop, _ = _reopening_repl(tiny_corpus, False)
    index_md = tiny_corpus / "INDEX.md"
    index_md.write_text(index_md.read_text(encoding="utf-8") + "- [Gone](gone%0Aaway.txt)\n", encoding="utf-8")
    loop.handle("What does a saw cut?")
    # (Wrapped at the console's width: compared without its breaks.)
    assert " ".join(out(loop.err)) == (
        "natoqa: error: the corpus changed and cannot be loaded: "
        f"{tiny_corpus}/INDEX.md:5: linked document not found: {tiny_corpus}/gone\u240aaway.txt"
    )


def test_a_document_saved_unchanged_is_opened_again_without_a_note(tiny_corpus):
    loop, calls = _reopening_repl(tiny_corpus, True)
    loop.handle("What does a saw cut?")
    tools = tiny_corpus / "tools.txt"
    os.utime(tools, ns=(tools.stat().st_atime_ns, tools.stat().st_mtime_ns + 10**9))
    loop.handle("What does a saw cut?")
    loop.handle("What does a saw cut?")
    assert calls == [1]  # once: the new times are the ones seen after
    assert out(loop.err) == []
    assert loop.console.file.getvalue().count("A saw cuts wood.") == 6  # quote and passage, three times


@pytest.mark.parametrize("line", ["quit", "Exit", "help"])
def test_a_command_without_its_colon_gets_a_hint_not_an_answer(repl, line):
    # Typed as a shell or Python's REPL takes them, they were asked as
    # questions: "No answer", or a passage that happens to hold the word.
    repl.handle(line)
    assert out(repl.err) == [f"commands start with ':' (:{line.lower()}); :help lists them"]
    assert out(repl.console) == []
    assert not repl.done


def test_sigterm_at_the_prompt_ends_it_and_keeps_the_history(spawn, tiny_corpus, tmp_path):
    # Ctrl-C at the prompt only clears the line; SIGTERM (a closing terminal
    # emulator's kill, a session ending) was taken the same way once SIGTERM
    # became an interrupt: the prompt must end, exit 143, its history saved.
    import signal

    data = tmp_path / "data"
    child = spawn(env={"NATOQA_CORPUS": str(tiny_corpus), "XDG_DATA_HOME": str(data)})
    child.expect_exact(PROMPT)
    ask(child, "what cuts wood")
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 143
    assert screen(child.logfile_read.getvalue())[-3:] == ["natoqa>", "natoqa: error: terminated", ""]
    assert "what cuts wood" in (data / "natoqa" / "history").read_text(encoding="utf-8")


def test_two_prompts_open_at_once_keep_both_histories(spawn, tiny_corpus, tmp_path):
    # Each prompt wrote the history it had read at its start: the one closed
    # last dropped the other's questions.
    env = {"NATOQA_CORPUS": str(tiny_corpus), "NO_COLOR": "1"}
    first, second = spawn(env=env), spawn(env=env)
    first.expect_exact(PROMPT)
    second.expect_exact(PROMPT)
    ask(first, "can penguins fly")
    ask(second, "what cuts wood")
    for child in (first, second):
        child.sendeof()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    saved = (tmp_path / "xdg-data" / "natoqa" / "history").read_text().splitlines()
    assert saved == ["can penguins fly", "what cuts wood"]
