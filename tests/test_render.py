"""The human layout: what a person sees, line for line, with and without styles."""

from __future__ import annotations

import io
import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from natoqa import render
from natoqa.answer import Answer, PassageRef, Result, span_in_passage
from natoqa.cli import cli

ESCAPE = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\")


def make_answer(passage: str, quote: str, first_line: int = 1, path: str = "notes/a.txt", **extra) -> Answer:
    start = passage.index(quote)
    return Answer(
        rank=extra.pop("rank", 1),
        score=extra.pop("score", 3.14159),
        document="a",
        title=extra.pop("title", "Notes"),
        path=path,
        quote=span_in_passage(passage, first_line, start, start + len(quote)),
        passage=PassageRef(passage, first_line, first_line + passage.count("\n")),
        coverage=1.0,
        matched=extra.pop("matched", ()),
        **extra,
    )


def plain_console(width: int = 80):
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False, markup=False, emoji=False)


def styled_console(width: int = 80):
    from rich.console import Console

    return Console(
        file=io.StringIO(), width=width, force_terminal=True, color_system="standard", highlight=False, markup=False
    )


def shown(console) -> list[str]:
    return [line.rstrip() for line in console.file.getvalue().split("\n")]


PASSAGE = "The albatross has the longest wingspan of any living bird.\nIt glides for hours."


def test_quote_first_then_reference_then_numbered_passage():
    console = plain_console()
    answer = make_answer(PASSAGE, "It glides for hours.", first_line=3)
    render.print_human(console, Result("q", True, (answer,)))
    assert shown(console) == [
        "“It glides for hours.”",
        "notes/a.txt:4:1  Notes  score 3.14",
        " 3 │ The albatross has the longest wingspan of any living bird.",
        ">4 │ It glides for hours.",
        "",
        "",
    ]


def test_several_answers_are_numbered():
    console = plain_console()
    first = make_answer(PASSAGE, "It glides for hours.", rank=1)
    second = make_answer("Penguins cannot fly.", "Penguins cannot fly.", first_line=6, rank=2, score=1.0)
    render.print_human(console, Result("q", True, (first, second)))
    assert shown(console) == [
        "#1",
        "“It glides for hours.”",
        "notes/a.txt:2:1  Notes  score 3.14",
        " 1 │ The albatross has the longest wingspan of any living bird.",
        ">2 │ It glides for hours.",
        "",
        "#2",
        "“Penguins cannot fly.”",
        "notes/a.txt:6:1  Notes  score 1.00",
        ">6 │ Penguins cannot fly.",
        "",
        "",
    ]


def test_no_answer_says_why():
    console = plain_console()
    render.print_human(console, Result("q", False, (), "no passage shares a word with the question"))
    assert shown(console) == ["No answer: no passage shares a word with the question.", ""]


@pytest.mark.parametrize(
    ("quote", "first_line"),
    [
        ("“I think so,” she said.", "“I think so,” she said.”"),
        ("He said “no.”", "“He said “no.”"),
        ("Plain words.", "“Plain words.”"),
    ],
)
def test_quotation_marks_are_not_doubled(quote, first_line):
    console = plain_console()
    render.print_human(console, Result("q", True, (make_answer(quote, quote),)), show_passage=False)
    assert shown(console)[0] == first_line


def test_long_lines_wrap_under_the_text_not_the_gutter():
    console = plain_console(width=40)
    text = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu."
    render.print_human(console, Result("q", True, (make_answer(text, text, first_line=9),)))
    assert shown(console) == [
        "“Alpha beta gamma delta epsilon zeta eta",
        "theta iota kappa lambda mu.”",
        "notes/a.txt:9:1  Notes  score 3.14",
        ">9 │ Alpha beta gamma delta epsilon zeta",
        "   │ eta theta iota kappa lambda mu.",
        "",
        "",
    ]


def test_piped_output_never_wraps():
    text = " ".join(["word"] * 400)
    console = render.make_console()  # stdout is not a terminal under pytest
    assert console.width == 10_000 and console.color_system is None
    console.file = io.StringIO()
    render.print_passage(console, make_answer(text, text))
    assert shown(console) == [">1 │ " + text, ""]


def test_window_keeps_short_passages_whole():
    text = "One. Two three. Four."
    assert render.passage_window(text, 5, 15) == (0, len(text))


def test_window_trims_long_passages_at_word_boundaries():
    before = " ".join(f"b{i:03d}" for i in range(100))  # 499 characters
    after = " ".join(f"a{i:03d}" for i in range(100))
    text = f"{before} QUOTE HERE. {after}"
    start = text.index("QUOTE")
    end = start + len("QUOTE HERE.")
    begin, finish = render.passage_window(text, start, end, context=20)
    assert text[begin:finish] == "b096 b097 b098 b099 QUOTE HERE. a000 a001 a002 a003"
    begin, finish = render.passage_window(text, start, end, context=22)  # cuts inside b095 and a004
    assert text[begin:finish] == "b096 b097 b098 b099 QUOTE HERE. a000 a001 a002 a003"


def test_rows_leave_out_lines_outside_the_window_once_per_run():
    text = "l1\nl2\nl3 quote\nl4\nl5"
    start = text.index("l3")
    assert render.passage_rows(text, 10, (start, start + 8)) == [
        (None, 0, 0),
        (12, start, start + 8),
        (None, start + 9, start + 9),
    ]


def test_a_long_line_is_trimmed_around_the_quote_with_ellipses():
    before = " ".join(f"b{i:03d}" for i in range(100))
    after = " ".join(f"a{i:03d}" for i in range(100))
    text = f"{before} QUOTE HERE. {after}"
    console = plain_console(width=10_000)
    render.print_passage(console, make_answer(text, "QUOTE HERE."))
    kept_before = " ".join(f"b{i:03d}" for i in range(52, 100))  # 240 characters of context
    kept_after = " ".join(f"a{i:03d}" for i in range(48))
    assert shown(console) == [f">1 │ … {kept_before} QUOTE HERE. {kept_after} …", ""]


def test_hard_wrapped_passage_keeps_three_lines_either_side():
    lines = [f"Line {n} says little." for n in range(1, 30)]
    lines[14] = "The quote is here on line fifteen."
    text = "\n".join(lines)
    console = plain_console()
    render.print_passage(console, make_answer(text, "The quote is here on line fifteen.", first_line=1))
    assert shown(console) == [
        "    ┆ …",
        " 12 │ Line 12 says little.",
        " 13 │ Line 13 says little.",
        " 14 │ Line 14 says little.",
        ">15 │ The quote is here on line fifteen.",
        " 16 │ Line 16 says little.",
        " 17 │ Line 17 says little.",
        " 18 │ Line 18 says little.",
        "    ┆ …",
        "",
    ]


def test_quote_at_the_start_has_no_leading_ellipsis():
    text = "\n".join(f"Line {n} says little." for n in range(1, 10))
    console = plain_console()
    render.print_passage(console, make_answer(text, "Line 1 says little.", first_line=1))
    assert shown(console) == [
        ">1 │ Line 1 says little.",
        " 2 │ Line 2 says little.",
        " 3 │ Line 3 says little.",
        " 4 │ Line 4 says little.",
        "   ┆ …",
        "",
    ]


def test_on_a_terminal_styles_are_bold_underline_reverse_never_a_colour():
    console = styled_console()
    passage = "Penguins cannot fly. They swim in cold southern seas."
    answer = make_answer(
        passage,
        "They swim in cold southern seas.",
        matched=("swim",),
        answer=span_in_passage(passage, 1, passage.index("cold"), passage.index("cold") + 4),
    )
    render.print_human(console, Result("q", True, (answer,)))
    raw = console.file.getvalue()
    # The quote: bold, its short answer reversed.
    assert raw.startswith(
        "\x1b[1m“\x1b[0m\x1b[1mThey swim in \x1b[0m\x1b[1;7mcold\x1b[0m\x1b[1m southern seas.\x1b[0m\x1b[1m”\x1b[0m\n"
    )
    # The passage: dim gutter, the quote underlined, matched terms bold, the short answer reversed.
    assert (
        "\x1b[2m>1 │ \x1b[0mPenguins cannot fly. \x1b[4mThey \x1b[0m\x1b[1;4mswim\x1b[0m\x1b[4m in \x1b[0m"
        "\x1b[4;7mcold\x1b[0m\x1b[4m southern seas.\x1b[0m\n"
    ) in raw
    assert "\x1b]8;id=" in raw and ";file:///" in raw  # the reference is a hyperlink too
    # Fixed foreground or background colours fail on one of light or dark terminals.
    assert not re.search(r"\x1b\[[0-9;]*(?<![0-9])(3[0-7]|4[0-7]|9[0-7])m", raw)
    assert [line.rstrip() for line in ESCAPE.sub("", raw).split("\n")] == [
        "“They swim in cold southern seas.”",
        "notes/a.txt:1:22  Notes  score 3.14",
        ">1 │ Penguins cannot fly. They swim in cold southern seas.",
        "",
        "",
    ]


@pytest.mark.parametrize(
    ("env", "args", "escapes"),
    [
        ({"FORCE_COLOR": "1"}, [], True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, [], False),
        ({"FORCE_COLOR": "1"}, ["--no-color"], False),
        ({}, [], False),  # not a terminal
    ],
)
def test_escape_codes_only_on_a_terminal_with_colour_allowed(tiny_corpus, env, args, escapes):
    result = CliRunner().invoke(
        cli, ["ask", "--corpus", str(tiny_corpus), "longest wingspan", *args], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0
    assert ("\x1b[" in result.stdout) is escapes
    assert (
        ESCAPE.sub("", result.stdout).split("\n")[0] == "“The albatross has the longest wingspan of any living bird.”"
    )


EXPLAIN = {
    "passage_score": 3.931,
    "k1": 0.9,
    "passage_length": 28,
    "terms": [
        {"term": "putin", "idf": 2.0794, "tf": 1, "contribution": 1.9655},
        {"term": "want", "idf": 2.0794, "tf": 1, "contribution": 1.9655},
        {"term": "moon", "idf": 3.5, "tf": 0, "contribution": 0.0},
    ],
    "sentences": [
        {"index": 1, "matched": ["putin", "want"], "weight": 4.1589, "chosen": True},
        {"index": 2, "matched": [], "weight": 0, "chosen": False},
    ],
    "rule": "the sentence holding the most question IDF weight",
    "runner_up": {"path": "seeds/a.txt", "start_line": 23, "end_line": 24, "score": 2.0491},
    # Keys natoqa does not know yet still show, by name.
    "sentence_scores": {"bonus": 0.5},
    "answer_type": "person",
}


def test_explain_renders_tables_runner_up_and_unknown_keys():
    console = plain_console()
    render.print_explain(console, EXPLAIN)
    assert shown(console) == [
        "Why this passage: BM25 score 3.93 · k1 0.9 · passage length 28",
        "Question terms",
        " term     IDF   tf in passage   contribution",
        "─────────────────────────────────────────────",
        " putin   2.08               1           1.97",
        " want    2.08               1           1.97",
        " moon    3.50               0           0.00",
        "",
        " total                                  3.93",
        "Runner-up: seeds/a.txt:23-24  score 2.05",
        "How the sentence was picked: the sentence holding the most question IDF weight",
        "Sentences of the passage",
        " #   matched       IDF weight   quoted",
        "───────────────────────────────────────",
        " 1   putin, want         4.16   yes",
        " 2                       0.00",
        "sentence scores:",
        "  bonus: 0.50",
        "answer type: person",
        "",
    ]


def test_a_path_with_a_line_break_stays_on_the_reference_line():
    # A file name may hold a newline: printed as it was, the reference (and
    # the title from the file name) ran over two lines, the line:col on the
    # second, where no editor finds a reference.
    console = plain_console()
    answer = make_answer(PASSAGE, "It glides for hours.", path="notes/two\nlines.txt", title="two\nlines")
    render.print_human(console, Result("q", True, (answer,)), show_passage=False)
    assert shown(console)[:2] == ["“It glides for hours.”", "notes/two\u240alines.txt:2:1  two\u240alines  score 3.14"]
    console = plain_console()
    render.print_explain(console, {"runner_up": {"path": "notes/two\nlines.txt", "start_line": 6, "end_line": 6}})
    assert shown(console) == ["Runner-up: notes/two\u240alines.txt:6-6", ""]


def test_explain_related_terms_that_count_show_the_bm25_score_with_the_terms():
    # The terms' total leaves out what a related word adds: the related
    # table's footer brings the two to the passage's BM25 score.
    related = [
        {"for": "invade", "term": "invas", "kind": "near", "weight": 1.05, "tf": 1, "contribution": 0.97},
        {"for": "invade", "term": "attack", "kind": "far", "weight": 0.78, "tf": 0, "contribution": 0.0},
    ]
    console = plain_console()
    render.print_explain(console, {"terms": EXPLAIN["terms"], "related_terms": related})
    lines = shown(console)
    assert lines[lines.index("related terms") + 6].split() == ["BM25", "score", "4.90"]
    console = plain_console()
    render.print_explain(console, {"terms": EXPLAIN["terms"], "related_terms": related[1:]})
    assert shown(console)[-2:] == [" invade   attack   far          0.78               0           0.00", ""]


def test_explain_text_across_lines_stays_on_its_line():
    # A short answer spanning a line break of the passage ("Tensions" ends
    # a caption line) printed that break, so the rest of its record began a
    # line of its own, at the left margin.
    console = plain_console(width=120)
    picked = {"text": "Belgium NATO Ukraine Tensions\nNATO Secretary General", "kind": "name", "score": 3.52}
    render.print_explain(console, {"short_answer": {"question_kind": "person", "picked": picked}})
    assert shown(console) == [
        "short answer:",
        "  question kind: person",
        "  picked: text Belgium NATO Ukraine Tensions NATO Secretary General, kind name, score 3.52",
        "",
    ]


def test_explain_labels_are_bold_and_values_plain():
    console = styled_console()
    render.print_explain(console, {"answer_type": "person", "confidence": 0.75})
    assert (
        console.file.getvalue()
        == "\x1b[1mWhy this passage: \x1b[0mconfidence 0.75\n\x1b[1manswer type: \x1b[0mperson\n"
    )


def test_explain_from_the_cli_shows_the_same_numbers_as_json(runner):
    question = "How many troops is the U.S. sending to Poland?"
    data = json.loads(runner.invoke(cli, ["ask", "--explain", "--json", question]).stdout)
    explain = data["answers"][0]["explain"]
    result = runner.invoke(cli, ["ask", "--explain", question], catch_exceptions=False)
    lines = [line.rstrip() for line in result.stdout.split("\n")]
    assert lines[0].startswith("“The U.S. has started to deploy 5,000 troops to Poland")
    at = lines.index("Question terms")
    assert lines[at - 2] == ""
    assert lines[at + 1].split() == ["term", "IDF", "tf", "in", "passage", "contribution"]
    rows = [row.split() for row in lines[at + 3 : at + 3 + len(explain["terms"])]]
    assert rows == [[t["term"], f"{t['idf']:.2f}", str(t["tf"]), f"{t['contribution']:.2f}"] for t in explain["terms"]]
    runner_up = explain["runner_up"]
    assert (
        f"Runner-up: {runner_up['path']}:{runner_up['start_line']}-{runner_up['end_line']}"
        in lines[at + 5 + len(explain["terms"])]
    )
    assert "\x1b[" not in result.stdout


@given(
    words=st.lists(st.text(alphabet="abc", min_size=1, max_size=8), min_size=1, max_size=300),
    breaks=st.lists(st.booleans(), max_size=300),
    data=st.data(),
)
def test_window_always_holds_the_whole_quote_and_cuts_between_words(words, breaks, data):
    seps = ["\n" if b else " " for b in breaks] + [" "] * len(words)
    text = "".join(w + seps[i] for i, w in enumerate(words[:-1])) + words[-1]
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    begin, finish = render.passage_window(text, start, end, context=30, context_lines=2)
    assert begin <= start and end <= finish
    assert begin == 0 or text[begin - 1].isspace()
    assert finish == len(text) or text[finish].isspace()
    rows = render.passage_rows(text, 1, (begin, finish))
    shown_text = "\n".join(text[a:b] for n, a, b in rows if n is not None)
    assert text[start:end] in shown_text
