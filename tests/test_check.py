"""`natoqa check`: the questions file as a CI gate."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from natoqa.cli import cli

from .conftest import SEEDS, make_corpus

PASSING = """\
# a comment that must survive --record
questions:
  - id: wingspan
    question: "Which bird has the longest wingspan?"
    document: birds
    line: 3
    answers: ["albatross"]
  - question: "What does a saw cut?"
    document: tools
    line: [3]
    answers: ["cuts wood"]
  - question: "Who won the football World Cup?"
    answerable: false
"""

FAILING = """\
questions:
  - id: wrong-line
    question: "Which bird has the longest wingspan?"
    document: birds
    line: 6
  - question: "What does a saw cut?"
    answers: ["cuts wood"]
"""


def write(tmp_path, text, name="q.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(runner, args):
    return runner.invoke(cli, ["check", *args])


def test_passing_file(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, PASSING)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{path}: 3 passed, 0 failed, pass rate 100.0% (minimum 100.0%, ok), ")
    assert line.endswith("; answerable 2/2, unanswerable 1/1 abstained")


def test_failing_file_shows_the_failure(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, FAILING)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"FAIL {path}:2: entry 1 (id wrong-line): wrong passage (lines 3-4)"
    assert lines[1] == "  question: Which bird has the longest wingspan?"
    assert lines[2] == "  expected: birds:6"
    assert lines[3] == (
        f"  got:      {tiny_corpus / 'birds.txt'}:3:1: “The albatross has the longest wingspan of any living bird.”"
    )
    assert lines[4].startswith(f"{path}: 1 passed, 1 failed, pass rate 50.0% (minimum 100.0%, below minimum)")


MULTI_LINE = """\
questions:
  - question: |
      Which bird has
      the longest wingspan?
    document: tools
  - question: >
      What does
      a saw cut?
    document: birds
  - question: "Which bird has\\nthe longest wingspan?"
    document: tools
"""


def test_a_document_path_with_a_line_break_stays_on_the_got_line(runner, tmp_path):
    # The `got:` line printed the quote's path as it was: a file name with a
    # newline put the line:col and the quote on a line of their own.
    doc = tmp_path / "two\nlines.txt"
    doc.write_text("The council approved the budget in March.\n")
    path = write(tmp_path, 'questions:\n  - question: "Who approved the budget?"\n    answers: ["nobody"]\n')
    result = invoke(runner, [str(path), "--corpus", str(doc)])
    assert result.exit_code == 1
    got = f"  got:      {tmp_path}/two\u240alines.txt:1:1: “The council approved the budget in March.”"
    assert result.stdout.splitlines()[3] == got
    assert len(result.stdout.splitlines()) == 5


def test_a_question_over_several_lines_is_one_line_of_the_report(runner, tiny_corpus, tmp_path):
    # A block scalar's line breaks were printed: the question ran over
    # lines of its own (and `>` left a blank one), the layout broken.
    path = write(tmp_path, MULTI_LINE)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(tmp_path / "r.xml")])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(("FAIL ", "  expected: ", "  got: "))] == [
        "  question: Which bird has the longest wingspan?",
        "  question: What does a saw cut?",
        "  question: Which bird has the longest wingspan?",
        lines[-1],
    ]
    assert len(lines) == 3 * 4 + 1
    cases = ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
    assert [(c.get("name"), c.find("failure").text.splitlines()[0]) for c in cases] == [
        ("entry 1: Which bird has the longest wingspan?", "question: Which bird has the longest wingspan?"),
        ("What does a saw cut?", "question: What does a saw cut?"),
        ("entry 3: Which bird has the longest wingspan?", "question: Which bird has the longest wingspan?"),
    ]
    # JSON keeps the question as the file holds it.
    report = json.loads(invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--json"]).stdout)
    assert [c["question"] for c in report["files"][0]["cases"]] == [
        "Which bird has\nthe longest wingspan?\n",
        "What does a saw cut?\n",
        "Which bird has\nthe longest wingspan?",
    ]


def test_an_id_or_an_answer_with_a_line_break_keeps_the_report_a_line_a_field(runner, tiny_corpus, tmp_path):
    # Printed as written, `id: "x\nFAIL ..."` made a line that read as a
    # failure of its own, and an answer's line break split 'expected:'.
    path = write(
        tmp_path,
        'questions:\n  - question: "What does a saw cut?"\n    id: "saw\\nFAIL fake"\n    answers: ["cuts\\nstone"]\n',
    )
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:3] == [
        f"FAIL {path}:2: entry 1 (id saw\u240aFAIL fake): the quote holds none of the expected answers",
        "  question: What does a saw cut?",
        '  expected: any document  answers: "cuts stone"',
    ]
    assert len(result.stdout.splitlines()) == 5
    # JSON keeps both as the file holds them.
    [case] = json.loads(invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--json"]).stdout)["files"][0]["cases"]
    assert (case["id"], case["expected"]["answers"]) == ("saw\nFAIL fake", ["cuts\nstone"])


def test_a_quote_that_opens_with_a_quotation_mark_gets_no_second_one(runner, tmp_path):
    from .conftest import make_corpus

    root = make_corpus(tmp_path / "c", {"a.txt": "Storks\n\n\u201cStorks nest on chimneys,\u201d the keeper said.\n"})
    path = write(tmp_path, 'questions:\n  - question: "Where do storks nest?"\n    answers: ["in trees"]\n')
    result = invoke(runner, [str(path), "--corpus", str(root)])
    assert result.exit_code == 1
    got = next(line for line in result.stdout.splitlines() if line.startswith("  got:"))
    assert got == f"  got:      {root / 'a.txt'}:3:1: \u201cStorks nest on chimneys,\u201d the keeper said.\u201d"


@pytest.mark.parametrize(("rate", "code"), [("0.5", 0), ("0.51", 1), ("0", 0), ("1", 1)])
def test_min_pass_rate(runner, tiny_corpus, tmp_path, rate, code):
    path = write(tmp_path, FAILING)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--min-pass-rate", rate])
    assert result.exit_code == code


def test_min_pass_rate_out_of_range(runner, tmp_path):
    result = invoke(runner, [str(write(tmp_path, PASSING)), "--min-pass-rate", "1.5"])
    assert result.exit_code == 2
    assert "1.5 is not in the range 0.0<=x<=1.0" in result.stderr


def test_json_report(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, FAILING)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--json"])
    data = json.loads(result.stdout)
    assert data["summary"]["passed"] == 1
    assert data["summary"]["failed"] == 1
    assert data["summary"]["pass_rate"] == 0.5
    assert data["summary"]["ok"] is False
    [report] = data["files"]
    first = report["cases"][0]
    assert first["id"] == "wrong-line"
    assert first["passed"] is False
    assert first["expected"] == {"answerable": True, "document": "birds", "lines": [6], "answers": []}
    assert first["got"]["answers"][0]["quote"]["start_line"] == 3


def test_junit_report_parses_back(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, FAILING)
    junit = tmp_path / "report.xml"
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(junit)])
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == str(path)
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "wrong-line: Which bird has the longest wingspan?",
        "What does a saw cut?",
    ]
    failure = cases[0].find("failure")
    assert "expected birds:6" in failure.get("message")
    assert "albatross" in failure.get("message")
    assert cases[1].find("failure") is None
    # Each case's own time (it was the suite's split evenly), within the
    # suite's, which the whole report's carries too.
    times = [float(c.get("time")) for c in cases]
    assert all(t > 0 for t in times) and sum(times) <= float(suite.get("time")) + 0.002  # microseconds at least
    assert (root.get("errors"), root.get("time")) == ("0", suite.get("time"))


def test_corpus_key_in_file_is_relative_to_the_file(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, "corpus: tiny\n" + PASSING)
    assert invoke(runner, [str(path)]).exit_code == 0


def test_command_line_corpus_overrides_file_and_file_overrides_env(runner, tiny_corpus, tmp_path, monkeypatch):
    path = write(tmp_path, "corpus: tiny\n" + PASSING)
    monkeypatch.setenv("NATOQA_CORPUS", str(SEEDS))
    assert invoke(runner, [str(path)]).exit_code == 0  # the file's corpus wins over the environment
    result = invoke(runner, [str(path), "--corpus", str(SEEDS)])
    assert result.exit_code == 2  # the seed corpus has no document 'birds'
    assert "document 'birds' is not in the corpus" in result.stderr


def test_top_lets_any_of_the_first_answers_pass(runner, tiny_corpus, tmp_path):
    text = 'top: 3\nquestions:\n  - question: "Which bird glides?"\n    document: birds\n    line: 1\n'
    one = write(tmp_path, text.replace("top: 3\n", ""), "one.yaml")
    three = write(tmp_path, text, "three.yaml")
    assert invoke(runner, [str(one), "--corpus", str(tiny_corpus)]).exit_code == 1
    assert invoke(runner, [str(three), "--corpus", str(tiny_corpus)]).exit_code == 0


def test_several_files_get_a_total(runner, tiny_corpus, tmp_path):
    a, b = write(tmp_path, PASSING, "a.yaml"), write(tmp_path, FAILING, "b.yaml")
    result = invoke(runner, [str(a), str(b), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].startswith("total: 4 passed, 1 failed, pass rate 80.0%")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("questions: [\n", "q.yaml:2:1: YAML syntax error"),
        ("- just a list\n", "q.yaml: must be a mapping with a 'questions' list, but it is a list"),
        ("", "q.yaml: must be a mapping with a 'questions' list, but it is empty"),
        ("title: x\n", "q.yaml:1: unknown top-level key 'title'"),
        ("corpus: x\n", "q.yaml: has no 'questions' list"),
        ("questions: 3\n", "q.yaml:1: 'questions' must be a list, not an integer"),
        ("questions: []\n", "q.yaml: the 'questions' list is empty"),
        ("top: 0\nquestions:\n  - question: x\n", "q.yaml:1: 'top' must be a whole number from 1 to 100"),
        ("questions:\n  - what\n", "q.yaml:2: entry 1: must be a mapping with a 'question', not a string"),
        ("questions:\n  - id: a\n", "q.yaml:2: entry 1 (id a): has no 'question'"),
        ("questions:\n  - question: x\n    colour: red\n", "q.yaml:3: entry 1: unknown key 'colour'"),
        ("questions:\n  - question: [x]\n", "q.yaml:2: entry 1: 'question' must be a string, not a list"),
        ("questions:\n  - question: ' '\n", "q.yaml:2: entry 1: 'question' is empty"),
        ("questions:\n  - question: x\n    line: three\n", "q.yaml:3: entry 1: 'line' must be a line number"),
        ("questions:\n  - question: x\n    line: [1, a]\n", "q.yaml:3: entry 1: 'line' must be a line number"),
        ("questions:\n  - question: x\n    line: 0\n", "q.yaml:3: entry 1: 'line' must be 1 or more"),
        ("questions:\n  - question: x\n    answers: yes\n", "q.yaml:3: entry 1: 'answers' must be a list of strings"),
        ("questions:\n  - question: x\n    answers: [1]\n", "q.yaml:3: entry 1: 'answers' must be a list of strings"),
        ("questions:\n  - question: x\n    answers: []\n", "q.yaml:3: entry 1: 'answers' is an empty list"),
        (
            "questions:\n  - question: x\n    answerable: maybe\n",
            "q.yaml:3: entry 1: 'answerable' must be true or false",
        ),
        ("questions:\n  - question: x\n    document: [a]\n", "q.yaml:3: entry 1: 'document' must be a document id"),
        ("questions:\n  - id: [a]\n    question: x\n", "q.yaml:2: entry 1: 'id' must be a string, not a list"),
        (
            "questions:\n  - question: x\n    document: fish\n",
            "q.yaml:2: entry 1: document 'fish' is not in the corpus",
        ),
        (
            "questions:\n  - question: x\n    document: birds\n    line: 99\n",
            "q.yaml:2: entry 1: line 99 does not exist in birds (6 lines)",
        ),
        (
            "questions:\n  - question: x\n    document: birds\n    line: 2\n",
            "q.yaml:2: entry 1: line 2 of birds is blank",
        ),
        ("questions:\n  - question: x\n    line: 3\n", "q.yaml:2: entry 1: 'line' needs a 'document'"),
        ("a: &a [1, 2]\nb: *a\n", "q.yaml:2:4: YAML aliases (*name) are not allowed"),
        ("questions: []\nquestions: []\n", "q.yaml:2: duplicate top-level key 'questions'"),
        ("questions:\n  - question: x\n    question: y\n", "q.yaml:3: entry 1: duplicate key 'question'"),
        # What `ask` refuses, a gate refuses too, naming the entry.
        (
            'questions:\n  - question: "How \\e[31m many?"\n',
            "q.yaml:2: entry 1: the question holds a control character (U+001B) at column 5",
        ),
        (
            "questions:\n  - id: a\n    question: x\n  - id: b\n    question: y\n  - id: a\n    question: z\n",
            "q.yaml:6: entry 3 (id a): duplicate id (also entry 1, line 2)",
        ),
    ],
)
def test_schema_errors(runner, tiny_corpus, tmp_path, text, message):
    path = write(tmp_path, text)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("natoqa: error: ")
    assert message in line.replace(str(tmp_path) + "/", "")


def test_billion_laughs_fails_fast(runner, tmp_path):
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(levels) + "\nquestions: *a9\n")
    result = invoke(runner, [str(path)])
    assert result.exit_code == 2
    assert "YAML aliases (*name) are not allowed" in result.stderr


def test_missing_file_and_bad_corpus(runner, tmp_path):
    result = invoke(runner, [str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml: no such file" in result.stderr
    path = write(tmp_path, PASSING)
    result = invoke(runner, [str(path), "--corpus", str(tmp_path / "nowhere")])
    assert result.exit_code == 3 and "corpus not found" in result.stderr


def test_a_missing_corpus_named_by_the_file_names_the_file(runner, tmp_path, monkeypatch):
    path = write(tmp_path, "# the corpus\ncorpus: ../nowhere\n" + PASSING)
    monkeypatch.chdir(tmp_path)
    result = invoke(runner, ["q.yaml"])
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr == "natoqa: error: q.yaml:2: 'corpus' names ../nowhere, which does not exist\n"
    assert path.read_text().startswith("# the corpus\n")


RECORDABLE = """\
# keep this comment
questions:
  - id: wingspan   # and this one
    question: "Which bird has the longest wingspan?"
  - question: |
      What does a saw cut?
    answers: ["cuts wood"]
  - {question: "Which tool drives nails?"}
  - question: "Who won the football World Cup?"
    answerable: false
"""


def test_record_shows_the_change_and_writes_only_when_told(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, RECORDABLE)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record"])
    assert result.exit_code == 0
    assert "+    document: birds\n+    line: 3\n" in result.stdout
    assert "+    document: tools\n+    line: 3\n" in result.stdout
    assert "entry 3: written in flow style" in result.stderr
    assert "not written" in result.stderr
    assert path.read_text() == RECORDABLE  # a dry run changes nothing


def test_record_to_a_new_file_keeps_comments_and_order(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, RECORDABLE)
    new = tmp_path / "recorded.yaml"
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "-o", str(new)])
    assert result.exit_code == 0
    assert path.read_text() == RECORDABLE
    assert new.read_text() == RECORDABLE.replace(
        '    question: "Which bird has the longest wingspan?"\n',
        '    question: "Which bird has the longest wingspan?"\n    document: birds\n    line: 3\n',
    ).replace("      What does a saw cut?\n", "      What does a saw cut?\n    document: tools\n    line: 3\n")
    # The recorded file now passes as a gate.
    assert invoke(runner, [str(new), "--corpus", str(tiny_corpus)]).exit_code == 0


def test_expected_answers_meet_a_decomposed_quote(runner, tmp_path):
    # The question found "Mu\u0308ller", but the answer "Müller" did not.
    root = make_corpus(tmp_path / "c", {"m.txt": "Minutes\n\nThe owner is Mu\u0308ller, who said no comment.\n"})
    path = write(tmp_path, 'questions:\n  - question: "Who is the owner?"\n    answers: ["Müller"]\n')
    assert invoke(runner, [str(path), "--corpus", str(root)]).exit_code == 0


def test_junit_names_two_entries_of_one_question_apart(runner, tiny_corpus, tmp_path):
    path = write(
        tmp_path,
        'questions:\n  - question: "What cuts wood?"\n    answers: [saw]\n'
        '  - question: "What cuts wood?"\n    answers: [axe]\n  - question: "What drives nails?"\n',
    )
    junit = tmp_path / "r.xml"
    invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(junit)])
    names = [c.get("name") for c in ET.parse(junit).iter("testcase")]
    assert names == ["entry 1: What cuts wood?", "entry 2: What cuts wood?", "What drives nails?"]


def test_a_rate_below_the_minimum_never_reads_as_equal(runner, tiny_corpus, tmp_path):
    # 2 of 3 against 0.667 read "66.7% (minimum 66.7%, below minimum)".
    path = write(
        tmp_path,
        'questions:\n  - question: "What cuts wood?"\n  - question: "What drives nails?"\n'
        '  - question: "What cuts wood?"\n    answers: [axe]\n',
    )
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--min-pass-rate", "0.667"])
    assert result.exit_code == 1
    assert "pass rate 66.67% (minimum 66.70%, below minimum)" in result.stdout
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--min-pass-rate", "0.5"])
    assert "pass rate 66.7% (minimum 50.0%, ok)" in result.stdout
    data = json.loads(invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--json"]).stdout)
    assert data["summary"]["pass_rate"] == 2 / 3  # exact, as "ok" compares it


def test_record_marks_a_last_line_without_its_line_end(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, 'questions:\n  - question: "What cuts wood?"')
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record"])
    assert (
        '-  - question: "What cuts wood?"\n\\ No newline at end of file\n+  - question: "What cuts wood?"\n'
        in result.stdout
    )


def test_record_to_another_folder_rewrites_corpus_after_a_byte_order_mark(runner, tiny_corpus, tmp_path):
    # YAML's columns skip the mark, the line holds it: "corpus:../tinyy".
    path = tmp_path / "q.yaml"
    path.write_text("\ufeffcorpus: tiny\n" + RECORDABLE, encoding="utf-8")
    (tmp_path / "other").mkdir()
    new = tmp_path / "other" / "recorded.yaml"
    assert invoke(runner, [str(path), "--record", "-o", str(new)]).exit_code == 0
    assert new.read_text(encoding="utf-8").startswith("\ufeffcorpus: ../tiny\n")
    assert invoke(runner, [str(new)]).exit_code == 0


def test_record_says_when_no_relative_path_reaches_the_corpus(runner, tiny_corpus, tmp_path, monkeypatch):
    # On Windows, a corpus on another drive: relpath raises ValueError (exit 70).
    import os

    path = write(tmp_path, "corpus: tiny\n" + RECORDABLE)
    (tmp_path / "other").mkdir()
    new = tmp_path / "other" / "recorded.yaml"

    def other_drive(target, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(os.path, "relpath", other_drive)
    result = invoke(runner, [str(path), "--record", "-o", str(new)])
    assert result.exit_code == 0
    assert "'corpus' cannot name" in result.stderr and "make it absolute by hand" in result.stderr
    assert new.read_text().startswith("corpus: tiny\n")


def test_record_leaves_out_a_document_whose_name_is_not_utf8(runner, tmp_path):
    # Its id was written as "caf\udce9", which libyaml cannot read back.
    import os

    path = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(path, "w") as f:
        f.write("The summit was held in Madrid.\n")
    questions = write(tmp_path, "questions:\n  - question: Where was the summit held?\n")
    result = invoke(runner, [str(questions), "--corpus", os.fsdecode(path), "--record", "--in-place"])
    assert "entry 1: its document's file name is not UTF-8; a questions file cannot name it" in result.stderr
    assert questions.read_text() == "questions:\n  - question: Where was the summit held?\n"


def test_record_takes_the_answer_the_entry_accepts_or_none(runner, tmp_path):
    # It took the first answer always: a line from another document than
    # the entry names (the next check: exit 2, or silently another passage),
    # and, with `top`, the place of an answer that misses the expected text.
    root = make_corpus(
        tmp_path / "c",
        {"a.txt": "Saws\n\nA saw cuts wood quickly.\n", "b.txt": "Mills\n\nIn mills, wood is cut by band saws.\n"},
    )
    path = write(
        tmp_path,
        "top: 2\nquestions:\n"
        "  - question: What cuts wood?\n    answers: [band saws]\n"
        "  - question: What cuts wood?\n    document: b\n"
        "  - question: What cuts wood?\n    answers: [chainsaw]\n",
    )
    new = tmp_path / "new.yaml"
    result = invoke(runner, [str(path), "--corpus", str(root), "--record", "-o", str(new)])
    assert result.exit_code == 0, result.stderr
    assert new.read_text() == (
        "top: 2\nquestions:\n"
        "  - question: What cuts wood?\n    document: b\n    line: 3\n    answers: [band saws]\n"
        "  - question: What cuts wood?\n    line: 3\n    document: b\n"
        "  - question: What cuts wood?\n    answers: [chainsaw]\n"
    )
    assert (
        "entry 3: no answer fits the entry (the quote holds none of the expected answers); not recorded"
        in result.stderr
    )
    assert invoke(runner, [str(new), "--corpus", str(root), "--min-pass-rate", "0.6"]).exit_code == 0
    cases = json.loads(invoke(runner, [str(new), "--corpus", str(root), "--json"]).stdout)["files"][0]["cases"]
    assert [c["passed"] for c in cases] == [True, True, False]


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_record_writes_the_files_own_line_ends(runner, tiny_corpus, tmp_path, newline):
    # CR-only line ends got LF lines inserted among them.
    path = tmp_path / "q.yaml"
    path.write_bytes(RECORDABLE.replace("\n", newline).encode())
    new = tmp_path / "recorded.yaml"
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "-o", str(new)])
    assert result.exit_code == 0
    recorded = new.read_bytes().decode()
    assert f"{newline}    document: birds{newline}    line: 3{newline}" in recorded
    assert recorded.count(newline) == RECORDABLE.count("\n") + 4
    assert not {"\r", "\n"} & set(recorded.replace(newline, ""))  # no other line end
    assert invoke(runner, [str(new), "--corpus", str(tiny_corpus)]).exit_code == 0


def test_record_to_another_folder_keeps_a_relative_corpus_naming_the_same_folder(runner, tiny_corpus, tmp_path):
    # `corpus: tiny` is read from the file's folder: copied as it was into
    # other/, it named other/tiny, which does not exist.
    path = write(tmp_path, "corpus: tiny  # the test corpus\n" + RECORDABLE)
    (tmp_path / "other").mkdir()
    new = tmp_path / "other" / "recorded.yaml"
    result = invoke(runner, [str(path), "--record", "-o", str(new)])
    assert result.exit_code == 0, result.stderr
    assert new.read_text().startswith("corpus: ../tiny  # the test corpus\n# keep this comment\n")
    assert f"{new}: 'corpus' now reads ../tiny, from its own folder" in result.stderr
    assert invoke(runner, [str(new)]).exit_code == 0
    # Beside the original, or in place, the value stays as written.
    same = tmp_path / "same.yaml"
    result = invoke(runner, [str(path), "--record", "-o", str(same)])
    assert same.read_text().startswith("corpus: tiny  # the test corpus\n") and "now reads" not in result.stderr


def test_record_refuses_an_existing_output_and_writes_in_place(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, RECORDABLE)
    other = write(tmp_path, "x", "other.yaml")
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "-o", str(other)])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert other.read_text() == "x"
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "--in-place"])
    assert result.exit_code == 0
    assert "document: birds" in path.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_in_place_needs_record(runner, tmp_path):
    result = invoke(runner, [str(write(tmp_path, PASSING)), "--in-place"])
    assert result.exit_code == 2 and "--in-place and --output go with --record" in result.stderr


def test_seed_questions_file_is_valid_and_large_enough():
    from natoqa.check import read_check_file

    cf = read_check_file(str(SEEDS / "questions.yaml"))
    assert len([c for c in cf.cases if c.answerable]) >= 30
    assert len([c for c in cf.cases if c.id.startswith("para-")]) >= 20


def test_record_in_place_through_a_symlink_updates_the_linked_file(runner, tiny_corpus, tmp_path):
    real = write(tmp_path, RECORDABLE, "real.yaml")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    result = invoke(runner, [str(link), "--corpus", str(tiny_corpus), "--record", "--in-place"])
    assert result.exit_code == 0
    assert link.is_symlink()
    assert "document: birds" in real.read_text()


def test_record_in_place_keeps_a_hard_linked_file_one_file(runner, tiny_corpus, tmp_path):
    # A rename put a new file at the path: the other name kept the old text.
    path = write(tmp_path, RECORDABLE)
    other = tmp_path / "other-name.yaml"
    other.hardlink_to(path)
    inode = path.stat().st_ino
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "--in-place"])
    assert result.exit_code == 0, result.stderr
    assert path.stat().st_ino == inode and path.stat().st_nlink == 2
    assert "document: birds" in other.read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".yaml") == ["other-name.yaml", "q.yaml"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a file away")
def test_record_in_place_as_root_keeps_the_files_owner(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, RECORDABLE)
    os.chown(path, 12345, 12345)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "--in-place"])
    assert result.exit_code == 0, result.stderr
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 12345)
    assert "document: birds" in path.read_text()


@pytest.mark.parametrize("mode", [0o444, 0o400], ids=["0444", "0400"])
def test_record_in_place_refuses_a_read_only_file_before_the_run(runner, tiny_corpus, tmp_path, mode):
    # It was replaced all the same (a rename needs only the folder writable).
    path = write(tmp_path, RECORDABLE)
    path.chmod(mode)
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    for named in (path, link):
        result = invoke(runner, [str(named), "--corpus", str(tiny_corpus), "--record", "--in-place"])
        assert (result.exit_code, result.stderr) == (
            2,
            f"natoqa: error: {named}: cannot write: the file is read-only; make it writable first\n",
        )
        assert result.stdout == ""
    assert path.read_text() == RECORDABLE and path.stat().st_mode & 0o777 == mode


def test_record_in_place_refuses_a_pipe_before_the_run(tiny_corpus, tmp_path):
    # `check /dev/stdin --record --in-place` (or `<(cat q.yaml)`) wrote the
    # recorded text back into the pipe it had read: no one read it, natoqa
    # said it was recorded and exited 0, and a text past the pipe's buffer
    # blocked it for ever.
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "natoqa", "check", "/dev/stdin", "--corpus", str(tiny_corpus), "--record", "--in-place"],
        input=RECORDABLE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "natoqa: error: /dev/stdin: is not a regular file (a pipe or a device); --in-place rewrites a file: use -o NEW\n"
    )


@pytest.mark.parametrize("where", ["folder", "missing/r.xml", "file/r.xml", "read-only.xml"])
@pytest.mark.parametrize("option", ["--junit", "-o"])
def test_a_report_or_output_that_cannot_be_written_is_refused_before_the_run(
    runner, tiny_corpus, tmp_path, monkeypatch, option, where
):
    # They were found once every question was answered: a run of minutes
    # (--dense, a large corpus) for an error it could have said at once.
    from natoqa import check as checkmod

    path = write(tmp_path, RECORDABLE)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "read-only.xml").write_text("old")
    (tmp_path / "read-only.xml").chmod(0o444)
    runs = []
    monkeypatch.setattr(checkmod, "run", lambda *a, **k: runs.append(a))
    target = str(tmp_path / where)
    extra = ["--record", "-o", target] if option == "-o" else ["--junit", target]
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), *extra])
    assert (result.exit_code, result.stdout, runs) == (2, "", [])
    message = {
        "folder": "is a folder; give a file path",
        "missing/r.xml": "cannot write: No such file or directory",
        "file/r.xml": "cannot write: Not a directory",
        "read-only.xml": "cannot write: the file is read-only; make it writable first",
    }[where]
    if option == "-o" and where in ("folder", "read-only.xml"):
        message = "already exists; --record writes only to a new file (or use --in-place)"
    assert result.stderr == f"natoqa: error: {target}: {message}\n"
    assert path.read_text() == RECORDABLE


def test_junit_refuses_a_read_only_report_and_writes_through_a_hard_link(runner, tiny_corpus, tmp_path):
    path = write(tmp_path, PASSING)
    report, other = tmp_path / "report.xml", tmp_path / "same-report.xml"
    report.write_text("old")
    other.hardlink_to(report)
    assert invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(report)]).exit_code == 0
    assert other.read_text().startswith("<?xml")
    report.chmod(0o444)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(report)])
    assert result.exit_code == 2
    assert result.stderr == f"natoqa: error: {report}: cannot write: the file is read-only; make it writable first\n"


def test_junit_refuses_a_read_only_report_before_the_run(runner, tiny_corpus, tmp_path, monkeypatch):
    # It was refused once every question had been answered (minutes, on a
    # large file), as --in-place's read-only file is not.
    from natoqa import check as checkmod

    def run(*args, **kwargs):
        raise AssertionError("the questions were answered")

    monkeypatch.setattr(checkmod, "run", run)
    path = write(tmp_path, PASSING)
    report = tmp_path / "report.xml"
    report.write_text("old")
    report.chmod(0o444)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--junit", str(report)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"natoqa: error: {report}: cannot write: the file is read-only; make it writable first\n"
    assert report.read_text() == "old"


def test_a_failed_write_through_names_the_copy_of_the_new_text(runner, tiny_corpus, tmp_path, monkeypatch):
    # Writing into the file is not atomic: what it should hold is kept beside it.
    import errno

    path = write(tmp_path, RECORDABLE)
    (tmp_path / "other-name.yaml").hardlink_to(path)
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the file's own, after its copy's
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "--in-place"])
    [copy] = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2,
        f"natoqa: error: {path}: cannot write: No space left on device; its new text is in {copy}",
    )
    assert "document: birds" in copy.read_text() and copy.read_text().startswith("# keep this comment\n")


def test_a_check_file_is_answered_as_a_batch_is(tmp_path, monkeypatch):
    # Its length is known up front: what its questions need is loaded
    # first (the first stage's arrays on a large corpus, the corpus's
    # stems), and they run with the cyclic collector off, as `ask -`'s do.
    import gc

    from natoqa import answer as answermod
    from natoqa import check as checkmod
    from natoqa import store
    from natoqa.corpus import load_corpus

    if answermod._numpy() is None:
        pytest.skip("numpy is not installed")
    questions = ["How many troops is the U.S. sending to Poland?", "Who is the NATO Secretary General?"] * 10
    path = write(tmp_path, "questions:\n" + "".join(f'  - question: "{q}"\n    answerable: true\n' for q in questions))
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0)
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", 5 * index.n_passages)  # 20 questions are past it
    walks, collector = [], []
    real_walk, real_ask = index.scores_weighted, answermod.ask
    monkeypatch.setattr(index, "scores_weighted", lambda *a: walks.append(1) or real_walk(*a))
    monkeypatch.setattr(answermod, "ask", lambda *a, **k: collector.append(gc.isenabled()) or real_ask(*a, **k))
    report = checkmod.run(checkmod.read_check_file(str(path)), index)
    assert len(report.outcomes) == 20
    assert walks == [] and hasattr(index, "_first_stage_arrays")  # on the arrays from the first question
    assert index._stems_known
    assert collector == [False] * 20 and gc.isenabled()


def test_squad_2_s_form_of_an_unanswerable_question_is_read(runner, tiny_corpus, tmp_path):
    # ../shared/bench writes SQuAD 2.0's unanswerable questions with the
    # passage they seem to point at and no answers; refusing those made the
    # benchmark's own questions file (and check --help's example) exit 2.
    entry = "  - question: {q}\n    document: tools\n    line: {line}\n    answers: []\n    answerable: false\n"
    path = write(
        tmp_path, "questions:\n" + entry.format(q="Who painted the moon?", line=3) + entry.format(q="x", line=99)
    )
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    # The line is still checked against the corpus: 99 is past the file's end.
    assert result.exit_code == 2 and "99" in result.stderr
    path = write(tmp_path, "questions:\n" + entry.format(q="Who painted the moon?", line=3))
    result = invoke(runner, [str(path), "--corpus", str(tiny_corpus)])
    assert result.exit_code == 0, result.stderr


def test_record_counts_its_entries_in_words_that_agree(runner, tiny_corpus, tmp_path):
    # "for 1 entries": the count and its noun now agree.
    one = 'questions:\n  - question: "Which bird has the longest wingspan?"\n'
    two = one + '  - question: "What does a saw cut?"\n    answers: ["cuts wood"]\n'
    for text, said in ((one, "for 1 entry in"), (two, "for 2 entries in")):
        path = write(tmp_path, text)
        new = tmp_path / f"recorded-{len(text)}.yaml"
        result = invoke(runner, [str(path), "--corpus", str(tiny_corpus), "--record", "-o", str(new)])
        assert result.exit_code == 0, result.stderr
        assert said in result.stderr
