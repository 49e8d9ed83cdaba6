"""The CLI as a person and a script use it: exact output and exit codes."""

from __future__ import annotations

import json

import pytest

from natoqa.cli import cli

Q = "How many troops is the U.S. sending to Poland?"


def invoke(runner, args, **kwargs):
    return runner.invoke(cli, args, catch_exceptions=False, **kwargs)


def test_ask_json_shape(runner):
    result = invoke(runner, ["ask", Q, "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["question"] == Q
    assert data["answered"] is True
    [answer] = data["answers"]
    assert answer["rank"] == 1
    assert answer["document"] == "nato-bolsters-eastern-flank"
    assert answer["title"] == "Doubting Russian exit, NATO looks to bolster its defenses"
    assert answer["path"].endswith("seeds/nato-bolsters-eastern-flank.txt")
    assert answer["quote"]["start_line"] == 13
    assert answer["quote"]["start_col"] == 1
    assert "5,000 troops to Poland" in answer["quote"]["text"]
    assert answer["passage"] == {
        "text": answer["passage"]["text"],
        "start_line": 13,
        "end_line": 13,
    }
    assert isinstance(answer["score"], float) and answer["score"] > 0


def test_ask_relative_corpus_gives_relative_paths(runner, tiny_corpus, monkeypatch):
    monkeypatch.chdir(tiny_corpus.parent)
    result = invoke(runner, ["ask", "--corpus", "tiny", "longest wingspan bird", "--json"])
    data = json.loads(result.stdout)
    assert data["answers"][0]["path"] == "tiny/birds.txt"
    assert data["answers"][0]["quote"] == {
        "text": "The albatross has the longest wingspan of any living bird.",
        "start_line": 3,
        "start_col": 1,
        "end_line": 3,
        "end_col": 58,
    }


def test_ask_absolute_corpus_gives_absolute_paths(runner, tiny_corpus):
    result = invoke(runner, ["ask", "--corpus", str(tiny_corpus), "hammer nails", "--json"])
    assert json.loads(result.stdout)["answers"][0]["path"] == str(tiny_corpus / "tools.txt")


def test_corpus_from_environment(runner, tiny_corpus, monkeypatch):
    monkeypatch.setenv("NATOQA_CORPUS", str(tiny_corpus))
    result = invoke(runner, ["ask", "-q", "where do they swim?"])
    assert result.exit_code == 0
    assert result.stdout == f"{tiny_corpus / 'birds.txt'}:6:22: They swim in cold southern seas.\n"


def test_quiet_is_grep_style(runner, tiny_corpus):
    result = invoke(runner, ["ask", "--corpus", str(tiny_corpus), "-q", "which tool cuts wood"])
    assert result.stdout == f"{tiny_corpus / 'tools.txt'}:3:24: A saw cuts wood.\n"


def test_top_k_answers_are_ranked(runner):
    result = invoke(runner, ["ask", Q, "-k", "3", "--json"])
    answers = json.loads(result.stdout)["answers"]
    assert [a["rank"] for a in answers] == [1, 2, 3]
    scores = [a["score"] for a in answers]
    assert scores == sorted(scores, reverse=True)


def test_jsonl_batch_from_stdin_in_order(runner):
    questions = "Who is the U.S. Defense Secretary?\n\nWhat does Putin want NATO to do?\n"
    result = invoke(runner, ["ask", "-", "--jsonl"], input=questions)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in lines] == [
        "Who is the U.S. Defense Secretary?",
        "What does Putin want NATO to do?",
    ]


def test_json_batch_is_an_array(runner):
    result = invoke(runner, ["ask", "-", "--json"], input="Who is the U.S. Defense Secretary?\n")
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 1


def test_unanswerable_exits_1(runner):
    result = invoke(runner, ["ask", "--json", "Who won the football World Cup in 2018?"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["answered"] is False and data["answers"] == []


def test_only_stopwords_is_a_clear_no_answer(runner):
    result = invoke(runner, ["ask", "what is it?"])
    assert result.exit_code == 1
    assert "no searchable words" in result.stdout


def test_human_output_shows_quote_reference_and_passage(runner):
    result = invoke(runner, ["ask", Q])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("“The U.S. has started to deploy 5,000 troops to Poland and Romania.")
    assert "seeds/nato-bolsters-eastern-flank.txt:13:1" in lines[1]
    assert "Doubting Russian exit, NATO looks to bolster its defenses" in lines[1]
    assert "score" in lines[1]
    assert lines[2].startswith(">13 │ The U.S. has started to deploy 5,000 troops to Poland and Romania. ")
    assert "\x1b[" not in result.stdout  # not a terminal: no escape codes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "x", "--json", "--jsonl"], "--json and --jsonl cannot be combined"),
        (["ask", "x", "-q", "--explain"], "--explain and --quiet cannot be combined"),  # it was ignored
        (["ask", "x", "-k", "0"], "Invalid value for '-k' / '--top'"),
        (["ask", "--corpus", "/nonexistent/corpus", "x"], "corpus not found: /nonexistent/corpus"),
        (["show", "nowhere.txt:3"], "nowhere.txt: no such document in the corpus, and no such file"),
        (["show", "nato-bolsters-eastern-flank:999"], "has 39 lines; there is no line 999"),
        (["show", "no-line-number"], "is not a reference"),
    ],
)
def test_errors_are_one_line_on_stderr(runner, args, message):
    result = runner.invoke(cli, args)
    assert result.exit_code in (2, 3)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("natoqa: error: ")
    assert message in result.stderr


def test_missing_corpus_exits_3(runner):
    assert runner.invoke(cli, ["ask", "--corpus", "/nonexistent", "x"]).exit_code == 3


def test_docs_lists_documents(runner, tiny_corpus):
    result = invoke(runner, ["docs", "--corpus", str(tiny_corpus)])
    assert result.stdout == (f"3  {tiny_corpus / 'birds.txt'}  Birds\n2  {tiny_corpus / 'tools.txt'}  Tools\n")
    data = json.loads(invoke(runner, ["docs", "--corpus", str(tiny_corpus), "--json"]).stdout)
    assert data[0] == {
        "document": "birds",
        "title": "Birds",
        "path": str(tiny_corpus / "birds.txt"),
        "passages": 3,
        "lines": 6,
    }


def test_show_follows_a_citation(runner, tiny_corpus):
    ref = f"{tiny_corpus / 'birds.txt'}:4:1"
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), ref])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{tiny_corpus / 'birds.txt'}:3-4  Birds\n"
        " 3 │ The albatross has the longest wingspan of any living bird.\n"
        ">4 │ It glides for hours.\n"
    )


def test_show_follows_the_ranges_natoqa_prints(runner, tiny_corpus):
    # show's own header and --explain's runner-up name FIRST-LAST: refused
    # as "not a reference" before.
    birds = tiny_corpus / "birds.txt"
    header = invoke(runner, ["show", "--corpus", str(tiny_corpus), "birds:4"]).stdout.splitlines()[0]
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), header.split()[0]])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{birds}:3-4  Birds\n>3 │ The albatross has the longest wingspan of any living bird.\n>4 │ It glides for hours.\n"
    )
    # Across passages: from the first one's start to the last one's end.
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), "birds:4-6"])
    assert result.stdout.splitlines() == [
        f"{birds}:3-6  Birds",
        " 3 │ The albatross has the longest wingspan of any living bird.",
        ">4 │ It glides for hours.",
        ">5 │ ",
        ">6 │ Penguins cannot fly. They swim in cold southern seas.",
    ]
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), "birds:4-3"])
    assert (result.exit_code, result.stderr) == (2, "natoqa: error: 'birds:4-3': the range ends before it starts\n")


def test_a_file_name_with_a_newline_stays_one_line_and_can_be_shown(runner, tmp_path):
    path = tmp_path / "two\nlines.txt"
    path.write_text("The council approved the budget in March.\n")
    quiet = invoke(runner, ["ask", "--corpus", str(path), "-q", "Who approved the budget?"]).stdout
    assert quiet == f"{tmp_path}/two\u240alines.txt:1:1: The council approved the budget in March.\n"
    docs = invoke(runner, ["docs", "--corpus", str(path)]).stdout
    assert docs.count("\n") == 1 and "two\u240alines" in docs
    result = invoke(runner, ["show", f"{path}:1"])
    assert result.exit_code == 0 and result.stdout.endswith(">1 │ The council approved the budget in March.\n")
    missing = invoke(runner, ["ask", "--corpus", f"{tmp_path}/two  spaces\nhere", "x"])
    # Its spaces kept and its newline shown, in one line.
    assert missing.stderr == f"natoqa: error: corpus not found: {tmp_path}/two  spaces\u240ahere\n"


@pytest.mark.parametrize(
    ("reference", "header", "marked"),
    [
        ("notes:2024:3", "notes:2024:1-3  notes:2024", [3]),
        ("notes:2024:2:4", "notes:2024:1-3  notes:2024", [2]),
        ("notes:2024:2-3", "notes:2024:1-3  notes:2024", [2, 3]),
        ("notes:2024:1:", "notes:2024:1-3  notes:2024", [1]),
        # With no file named notes:2, it is PATH:LINE:COL as ever.
        ("notes:2:1", "notes:1-2  notes", [2]),
    ],
    ids=["line", "line and column", "range", "trailing colon", "no file of that name"],
)
def test_show_takes_a_file_name_that_holds_colons_whole(runner, tmp_path, monkeypatch, reference, header, marked):
    # notes:2024:3 was read as line 2024, column 3 of notes, as a compiler's
    # file:line:col reference never is when the file is named notes:2024.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes:2024").write_text("The budget was approved.\nThe office moves.\nThe date is set.\n")
    (tmp_path / "notes").write_text("Minutes.\nActions.\n")
    result = invoke(runner, ["show", reference])
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == header
    assert [int(line[1:].split()[0]) for line in lines[1:] if line.startswith(">")] == marked


@pytest.mark.parametrize("col", [1, 20], ids=["first", "last"])
def test_show_takes_every_column_of_the_line(runner, tiny_corpus, col):
    # "It glides for hours." is 20 characters.
    result = runner.invoke(cli, ["show", "--corpus", str(tiny_corpus), f"birds:4:{col}"])
    assert result.exit_code == 0
    assert ">4 │ It glides for hours.\n" in result.stdout


@pytest.mark.parametrize("col", [0, 21, 9999])
def test_show_refuses_a_column_the_line_lacks(runner, tiny_corpus, col):
    result = runner.invoke(cli, ["show", "--corpus", str(tiny_corpus), f"birds:4:{col}"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"natoqa: error: birds:4:{col}: line 4 of {tiny_corpus / 'birds.txt'} has 20 characters; there is no column {col}\n"
    )


@pytest.mark.parametrize("reference", ["birds:" + "1" * 5000, "birds:4:" + "9" * 5000, "birds:99999999999999"])
def test_show_refuses_a_number_past_any_line_in_one_line(runner, tiny_corpus, reference):
    result = runner.invoke(cli, ["show", "--corpus", str(tiny_corpus), reference])
    assert (result.exit_code, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("natoqa: error: ") and "internal error" not in line


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("/dev/null", 2, "/dev/null: not a regular file (a pipe or a device); natoqa reads text files"),
        ("FOLDER", 2, "FOLDER: is a folder; show takes a document's PATH:LINE"),
    ],
)
def test_show_names_what_a_path_is_when_it_is_no_document(runner, tmp_path, where, code, message):
    # Both said "no such document in the corpus, and no such file": they exist.
    where = where.replace("FOLDER", str(tmp_path))
    result = runner.invoke(cli, ["show", f"{where}:1"])
    assert (result.exit_code, result.stderr) == (code, f"natoqa: error: {message.replace('FOLDER', str(tmp_path))}\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "FILE: binary file (NUL byte at offset 8), not UTF-8 text"),
        (b"caf\xe9\n", "FILE: not UTF-8 text (byte 0xe9 at offset 3)"),
        (b"", "FILE:1: FILE has 0 lines; there is no line 1"),
        (b"\n\n", "FILE:1: line 1 of FILE is blank; no passage there"),
    ],
    ids=["binary", "not UTF-8", "empty", "blank"],
)
def test_show_refuses_a_file_it_cannot_show_as_a_bad_reference(runner, tmp_path, content, message):
    # The file is show's PATH, not the corpus: these exited 3, "the corpus
    # could not be loaded" (the last two saying "the corpus has no text"),
    # where a missing file or a folder exits 2.
    path = tmp_path / "some.png"
    path.write_bytes(content)
    result = runner.invoke(cli, ["show", f"{path}:1"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"natoqa: error: {message.replace('FILE', str(path))}\n"


def test_show_refuses_a_named_corpus_that_does_not_load(runner, tmp_path, tiny_corpus):
    # It showed the file anyway, silently past the mistyped corpus.
    result = runner.invoke(cli, ["show", "--corpus", str(tmp_path / "typo"), f"{tiny_corpus / 'birds.txt'}:3"])
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"natoqa: error: corpus not found: {tmp_path / 'typo'}\n"


def test_show_blank_line_is_an_error(runner, tiny_corpus):
    result = runner.invoke(cli, ["show", "--corpus", str(tiny_corpus), "birds:2"])
    assert result.exit_code == 2
    assert "is blank" in result.stderr


def test_show_takes_a_range_that_starts_on_a_blank_line(runner, tiny_corpus, tmp_path):
    # It was refused as "line 2 ... is blank", where a range ending on a
    # blank line (birds:4-5) was shown.
    birds = tiny_corpus / "birds.txt"
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), "birds:2-3"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"{birds}:2-4  Birds",
        ">2 │ ",
        ">3 │ The albatross has the longest wingspan of any living bird.",
        " 4 │ It glides for hours.",
    ]
    # show's header for it is a reference show takes.
    again = invoke(runner, ["show", "--corpus", str(tiny_corpus), result.stdout.split()[0]])
    assert again.stdout == result.stdout.replace(" 4 │", ">4 │")
    # Blank at both ends, with a passage between: shown whole.
    result = invoke(runner, ["show", "--corpus", str(tiny_corpus), "birds:2-5"])
    assert result.stdout.splitlines()[0] == f"{birds}:2-5  Birds"
    # Only blank lines cite nothing, as a single blank line does not.
    gap = tmp_path / "gap.txt"
    gap.write_text("One.\n\n\nFour.\n")
    result = runner.invoke(cli, ["show", f"{gap}:2-3"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"natoqa: error: {gap}:2-3: lines 2-3 of {gap} are blank; no passage there\n"
    result = runner.invoke(cli, ["show", f"{gap}:3-3"])
    assert result.stderr == f"natoqa: error: {gap}:3-3: line 3 of {gap} is blank; no passage there\n"


def test_help_and_version(runner):
    for command in ([], ["ask"], ["docs"], ["show"]):
        result = invoke(runner, [*command, "-h"])
        assert result.exit_code == 0
        assert "Examples:" in result.stdout or command == []
    assert "Exit codes" in invoke(runner, ["ask", "--help"]).stdout
    assert invoke(runner, ["--version"]).stdout.startswith("natoqa, version ")


def test_python_dash_m_works_from_any_directory(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "natoqa", "ask", "-q", Q],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("/")  # the bundled corpus is named by an absolute path
    assert ":13:1: The U.S. has started to deploy 5,000 troops" in out.stdout


def test_bare_natoqa_reads_questions_from_a_pipe(runner):
    result = invoke(runner, [], input="Who is the U.S. Defense Secretary?\n")
    assert result.exit_code == 0
    assert result.stdout.startswith("“U.S. Defense Secretary Lloyd Austin")


def test_answers_do_not_depend_on_the_hash_seed(tmp_path):
    # Float sums over sets once made trimmed quotes differ between runs.
    import os
    import subprocess
    import sys

    from .conftest import SEEDS

    questions = "\n".join(
        line.split('"')[1] for line in (SEEDS / "questions.yaml").read_text().splitlines() if "question:" in line
    )
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, NATOQA_CACHE_DIR=str(tmp_path / seed))
        run = subprocess.run(
            [sys.executable, "-m", "natoqa", "ask", "-", "--jsonl", "-k", "3"],
            input=questions,
            capture_output=True,
            text=True,
            env=env,
        )
        outputs.append(run.stdout)
    assert outputs[0] and outputs[0] == outputs[1]


def test_a_time_limit_deep_inside_is_a_bug_not_an_output_failure(runner, monkeypatch):
    # TimeoutError is an OSError: nltk's 5 s regex limit was reported as
    # "cannot write output" (exit 2), with no traceback under NATOQA_DEBUG.
    import natoqa.session

    def slow(self, question):
        raise TimeoutError("regular-expression match exceeded its 5.0s time limit")

    monkeypatch.setattr(natoqa.session.Session, "answer", slow)
    result = runner.invoke(cli, ["ask", Q])
    assert (result.exit_code, result.stderr) == (
        70,
        "natoqa: error: internal error: TimeoutError: regular-expression match exceeded its 5.0s time limit "
        "(a bug in natoqa; NATOQA_DEBUG=1 shows the traceback)\n",
    )
    monkeypatch.setenv("NATOQA_DEBUG", "1")
    with pytest.raises(TimeoutError):
        runner.invoke(cli, ["ask", Q], catch_exceptions=False)


def test_a_bug_is_one_line_with_exit_70(runner, monkeypatch):
    import natoqa.session

    def broken(self, question):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(natoqa.session.Session, "answer", broken)
    result = runner.invoke(cli, ["ask", Q])
    assert result.exit_code == 70
    assert result.stderr == (
        "natoqa: error: internal error: ZeroDivisionError: division by zero "
        "(a bug in natoqa; NATOQA_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("NATOQA_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        runner.invoke(cli, ["ask", Q], catch_exceptions=False)


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_output_is_utf8_whatever_stdout_was_set_to_encode(encoding):
    # PYTHONIOENCODING=latin-1, or a pipe on Windows (the ANSI code page):
    # the quote's curly apostrophe was an internal error, exit 70.
    from click.testing import CliRunner

    result = CliRunner(charset=encoding).invoke(cli, ["ask", "-q", "What does Putin want?"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "the world’s biggest security organization".encode() in result.stdout_bytes
