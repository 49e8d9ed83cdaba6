"""Presenting results: JSON records for scripts, rich text for people.

Machine output never carries markup. rich is imported only by the functions
that draw for a person, so `--json` and `--quiet` runs never pay for it.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: errors render without loading the answerer
    from natoqa.answer import Answer, Result


def result_dict(result: Result) -> dict:
    """The documented JSON object for one question."""
    out = {
        "question": result.question,
        "answered": result.answered,
        "answers": [answer_dict(a) for a in result.answers],
    }
    if result.reason:
        out["reason"] = result.reason
    return out


def answer_dict(answer: Answer) -> dict:
    # Built field by field rather than with dataclasses.asdict: this runs
    # once per answer in batch mode, and asdict's deep copy costs more than
    # the rest of the JSON writing. Keys in the records' field order.
    data = {
        "rank": answer.rank,
        "score": answer.score,
        "document": answer.document,
        "title": answer.title,
        "path": answer.path,
        "quote": _span_dict(answer.quote),
        "passage": {
            "text": answer.passage.text,
            "start_line": answer.passage.start_line,
            "end_line": answer.passage.end_line,
        },
        "coverage": answer.coverage,
        "matched": list(answer.matched),
    }
    if answer.answer is not None:
        data["answer"] = _span_dict(answer.answer)
    if answer.explain is not None:
        data["explain"] = answer.explain
    return data


def _span_dict(span) -> dict:
    return {
        "text": span.text,
        "start_line": span.start_line,
        "start_col": span.start_col,
        "end_line": span.end_line,
        "end_col": span.end_col,
    }


# Written as \u escapes: characters that some readers treat as line breaks
# (Python's splitlines, JavaScript), which left raw would cut a JSON Lines
# record in two, and lone surrogates (a file name that is not UTF-8, its
# bytes escaped by Python), which would reach stdout as bytes that are not
# UTF-8. One scan in C finds any of them.
_ESCAPED = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def unicode_escape(match) -> str:
    """A regex match of one character as its \\u escape (JSON's and YAML's)."""
    return f"\\u{ord(match.group()):04x}"


# ensure_ascii=False: quotes are verbatim text and stay readable in UTF-8.
# One encoder for every JSON Lines record: json.dumps with options builds a
# new one each call, a third of a record's cost. The records are trees of
# fresh dicts and lists, never circular.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _one_line_encoder():
    """The C encoder behind _ENCODER, made once: JSONEncoder.encode makes a
    new one for every call (None where the json module has no C part)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return None
    e = _ENCODER
    return make(None, e.default, basestring, None, e.key_separator, e.item_separator, False, False, True)


_C_ENCODE = _one_line_encoder()


def to_json(data, indent: int | None = None) -> str:
    if indent is not None:
        out = json.dumps(data, ensure_ascii=False, indent=indent)
    elif _C_ENCODE is not None:
        out = "".join(_C_ENCODE(data, 0))
    else:
        out = _ENCODER.encode(data)
    if _ESCAPED.search(out):
        out = _ESCAPED.sub(unicode_escape, out)
    return out


def one_line(text: str) -> str:
    return " ".join(text.split())


# Control characters as Unicode's pictures of them (ESC as ␛, DEL as ␡;
# the C1 range, which has no pictures, as �), for text shown to a person:
# a document holding escape sequences must not drive the reader's terminal
# (retitle it, hide lines, fake a prompt), and JUnit XML cannot hold them
# at all. One character for one, so columns and highlight offsets stay
# true. Tabs and line breaks are layout, kept; JSON keeps everything,
# escaped.
_PICTURES = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A)}
_PICTURES |= {0x7F: 0x2421} | {c: 0xFFFD for c in range(0x80, 0xA0)}


def visible(text: str) -> str:
    """text with its control characters (but tab and newline) made visible."""
    if text.isprintable():
        return text
    return text.translate(_PICTURES)


# Line breaks as pictures too, for what must stay one line: an error or a
# warning, a `-q` reference, a `docs` row (a file name may hold a newline).
_LINE_PICTURES = {ord("\n"): "\u240a", 0x2028: "\u2424", 0x2029: "\u2424"}


def single_line(text: str) -> str:
    """visible(text) with its line breaks shown too: one line, whatever it holds."""
    return visible(text).translate(_LINE_PICTURES)


def quiet_lines(result: Result) -> list[str]:
    """grep-style `path:line:col: quote` lines."""
    return [
        visible(f"{single_line(a.path)}:{a.quote.start_line}:{a.quote.start_col}: {one_line(a.quote.text)}")
        for a in result.answers
    ]


def offset_in_passage(passage_text: str, first_line: int, line: int, col: int) -> int:
    """Character offset in a passage's text of a 1-based document position."""
    offset = 0
    lines = passage_text.split("\n")
    for i in range(line - first_line):
        offset += len(lines[i]) + 1
    return offset + col - 1


# How much of a long passage is shown either side of the quote. The quote
# itself is never cut; the context is cut at word boundaries, and only when
# it would save more than a few words.
PASSAGE_CONTEXT = 240
CONTEXT_LINES = 3  # and at most this many lines either side
_TRIM_SLACK = 40

_WORD_GAP = re.compile(r"\s+")
_OPENING_MARKS = "“\"'‘«„"
_CLOSING_MARKS = "”\"'’»"


def make_console(no_color: bool = False, stderr: bool = False):
    """A rich Console for a person: styles only on a terminal with colour allowed.

    --no-color and NO_COLOR mean no escape codes at all (not only no colours):
    the layout is made to read well as plain text.
    """
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, emoji=False, markup=False)
    if not console.is_terminal:
        # Piped human output: no wrapping inserted into the text, no styles.
        return Console(
            stderr=stderr,
            highlight=False,
            no_color=True,
            color_system=None,
            emoji=False,
            markup=False,
            soft_wrap=True,
            width=10_000,
        )
    # A terminal that says it is narrower than this (COLUMNS=0, from a
    # broken environment) got nothing at all, or a word a line: 80 instead.
    width = None if console.width >= MIN_WIDTH else 80
    if no_color or os.environ.get("NO_COLOR"):
        return Console(stderr=stderr, highlight=False, emoji=False, markup=False, color_system=None, width=width)
    if width is not None:
        return Console(stderr=stderr, highlight=False, emoji=False, markup=False, width=width)
    return console


MIN_WIDTH = 20


def print_human(console, result: Result, show_passage: bool = True, explain: bool = False) -> None:
    """The answers for a person: quote first, then its reference, then the passage."""
    from rich.text import Text

    if not result.answered:
        console.print(Text(f"No answer: {result.reason}.", style="bold"))
        return
    for answer in result.answers:
        if len(result.answers) > 1:
            console.print(Text(f"#{answer.rank}", style="bold"))
        console.print(_quote_text(answer))
        console.print(reference_text(answer))
        if show_passage:
            print_passage(console, answer)
        if explain and answer.explain:
            console.print()
            print_explain(console, answer.explain)
        console.print()


def reference_text(answer: Answer):
    """`path:line:col  Title  score N`: the form terminals and editors make clickable.

    On a terminal that supports it the path is also an OSC 8 hyperlink to
    the file; rich drops the link when it draws no styles.
    """
    from rich.style import Style
    from rich.text import Text

    ref = Text()
    # A file name may hold a line break: shown as a picture, as `-q` shows
    # it, so the reference stays one line an editor can jump to.
    where = single_line(f"{answer.path}:{answer.quote.start_line}:{answer.quote.start_col}")
    ref.append(where, style=Style(bold=True, link=_file_url(answer.path)))
    ref.append("  ")
    ref.append(single_line(answer.title), style="italic")
    ref.append(f"  score {answer.score:.2f}", style="dim")
    return ref


def _file_url(path: str) -> str:
    from pathlib import Path

    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return ""


def quotation_marks(body: str) -> tuple[str, str]:
    """The marks to put around a quote: none on a side that already has one,
    as ““The fact ...” reads as a typo."""
    return ("" if body[:1] in _OPENING_MARKS else "“"), ("" if body[-1:] in _CLOSING_MARKS else "”")


def _quote_text(answer: Answer):
    from rich.text import Text

    body = visible(one_line(answer.quote.text))
    opening, closing = quotation_marks(body)
    quote = Text(opening, style="bold")
    quote.append(body, style="bold")
    quote.append(closing, style="bold")
    short = getattr(answer, "answer", None)
    if short is not None:
        plain = quote.plain
        shown = visible(one_line(short.text))
        at = plain.find(shown)
        if at >= 0:
            quote.stylize("reverse", at, at + len(shown))
    return quote


def passage_window(
    text: str, start: int, end: int, context: int = PASSAGE_CONTEXT, context_lines: int = CONTEXT_LINES
) -> tuple[int, int]:
    """The part of a passage shown around text[start:end]: [from, to) offsets.

    Never cuts into the quote; cuts the context at white space, and leaves a
    side whole when trimming it would save less than a few words.
    """
    begin, finish = 0, len(text)
    if start > context + _TRIM_SLACK:
        # From the white space before the cut, so a cut that falls on the
        # start of a word keeps that word.
        gap = _WORD_GAP.search(text, start - context - 1, start)
        begin = gap.end() if gap else start
    if len(text) - end > context + _TRIM_SLACK:
        gaps = list(_WORD_GAP.finditer(text, end, end + context + 1))
        finish = gaps[-1].start() if gaps else end
    # Hard-wrapped text: whole lines of context, a few either side.
    first = text.count("\n", 0, start) - context_lines
    if first > 0:
        line_start = -1
        for _ in range(first):
            line_start = text.index("\n", line_start + 1)
        begin = max(begin, line_start + 1)
    line_end = len(text) if end == 0 else end - 1
    for _ in range(context_lines + 1):
        line_end = text.find("\n", line_end + 1)
        if line_end < 0:
            break
    else:
        finish = min(finish, line_end)
    return begin, finish


def passage_rows(text: str, first_line: int, window: tuple[int, int]) -> list[tuple[int | None, int, int]]:
    """Rows to show of a passage: (line number, start, end) offsets into text.

    Lines outside the window are left out; each run of them becomes one row
    with line number None (drawn as an ellipsis). A line the window cuts
    keeps only its part inside the window.
    """
    begin, finish = window
    rows: list[tuple[int | None, int, int]] = []
    offset = 0
    for i, line in enumerate(text.split("\n")):
        line_end = offset + len(line)
        if line_end < begin or offset >= finish:
            if not rows or rows[-1][0] is not None:
                rows.append((None, offset, offset))
        else:
            rows.append((first_line + i, max(offset, begin), min(line_end, finish)))
        offset = line_end + 1
    return rows


def print_passage(console, answer: Answer) -> None:
    """The passage with line numbers, the quote highlighted, terms emphasized.

    Lines holding the quote are marked '>' in the gutter (as `natoqa show`
    marks its line), so the quote can be found with colour off as well.
    Long passages are trimmed around the quote, with '…' where text is left
    out; on a terminal, long lines wrap under the text, not under the gutter.
    """
    from rich.text import Text

    from natoqa import text as textmod

    passage = answer.passage
    q = answer.quote
    q_start = offset_in_passage(passage.text, passage.start_line, q.start_line, q.start_col)
    q_end = offset_in_passage(passage.text, passage.start_line, q.end_line, q.end_col) + 1
    matched = set(answer.matched)
    full = Text(visible(passage.text))
    full.stylize("underline", q_start, q_end)
    for term, start, end in textmod.terms_with_spans(passage.text):
        if term in matched:
            full.stylize("bold", start, end)
    short = getattr(answer, "answer", None)
    if short is not None:
        s_start = offset_in_passage(passage.text, passage.start_line, short.start_line, short.start_col)
        s_end = offset_in_passage(passage.text, passage.start_line, short.end_line, short.end_col) + 1
        full.stylize("reverse", s_start, s_end)
    quote_lines = range(q.start_line, q.end_line + 1)
    width = len(str(passage.end_line))
    rows = passage_rows(passage.text, passage.start_line, passage_window(passage.text, q_start, q_end))
    for number, start, end in rows:
        if number is None:
            console.print(Text(f" {'':>{width}} ┆ …", style="dim"))
            continue
        mark = ">" if number in quote_lines else " "
        body = Text()
        line_start = passage.text.rfind("\n", 0, start) + 1
        line_end = passage.text.find("\n", end)
        line_end = len(passage.text) if line_end < 0 else line_end
        if start > line_start:
            body.append("… ", style="dim")
        body.append_text(full[start:end])
        if end < line_end:
            body.append(" …", style="dim")
        gutter = f"{mark}{number:>{width}} │ "
        _print_wrapped(console, gutter, " " * (width + 1) + " │ ", body)


def _print_wrapped(console, gutter: str, continuation: str, body) -> None:
    """A gutter, then body wrapped to the console width with a hanging indent."""
    from rich.text import Text

    room = console.width - len(gutter)
    pieces = body.wrap(console, room) if room >= 20 and len(body) > room else [body]
    for i, piece in enumerate(pieces):
        row = Text(gutter if i == 0 else continuation, style="dim", end="")
        row = Text.assemble(row, piece)
        console.print(row)


# Labels for the explain keys natoqa knows; other keys are shown by name, so
# new numbers added to Answer.explain appear without changes here.
_LABELS = {
    "passage_score": "BM25 score",
    "k1": "k1",
    "b": "b",
    "passage_length": "passage length",
    "average_length": "average length",
    "terms": "Question terms",
    "sentences": "Sentences of the passage",
    "runner_up": "Runner-up",
    "rule": "How the sentence was picked",
    "idf": "IDF",
    "tf": "tf in passage",
    "contribution": "contribution",
    "index": "#",
    "weight": "IDF weight",
    "stand_in_for": "stand-in for",
    "chosen": "quoted",
}


_EXPLAIN_ORDER = ("terms", "runner_up", "rule", "sentences")


def _label(key: str) -> str:
    return _LABELS.get(key, key.replace("_", " "))


def _number(value) -> str:
    """A scalar as a person reads it: 0.9, 8.07, 28."""
    return f"{round(value, 2):g}" if isinstance(value, float) else str(value)


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_cell(v)}" for k, v in value.items())
    # On one line, as the quote is: a short answer across a line break of
    # the passage broke its record's line, its rest at the left margin.
    return visible(one_line(str(value)))


def print_explain(console, explain: dict) -> None:
    """Answer.explain for a person: the scalars on one line, lists of records
    as tables (the question terms with their BM25 numbers, the sentences),
    the runner-up passage as a reference, text as text."""
    from rich.text import Text

    scalars = {k: v for k, v in explain.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        line = _labelled("Why this passage: ")
        line.append(" · ".join(f"{_label(k)} {_number(v)}" for k, v in scalars.items()))
        console.print(line)
    # The known sections in reading order (terms, the passage that came
    # second, then the sentence choice); anything else after, as it comes.
    order = [k for k in _EXPLAIN_ORDER if k in explain] + [k for k in explain if k not in _EXPLAIN_ORDER]
    for key in order:
        value = explain[key]
        if key in scalars:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            console.print(_explain_table(key, value, _contributions(explain.get("terms"))))
        elif isinstance(value, dict):
            line = _labelled(f"{_label(key)}: ")
            if "path" in value and "start_line" in value:
                end = value.get("end_line", value["start_line"])
                line.append(single_line(f"{value['path']}:{value['start_line']}-{end}"))
                rest = {k: v for k, v in value.items() if k not in ("path", "start_line", "end_line")}
                if rest:
                    line.append("  " + _cell(rest), style="dim")
                console.print(line)
            else:
                # A record of its own (say, how the short answer was picked):
                # one indented line per field.
                console.print(Text(f"{_label(key)}:", style="bold"))
                for name, item in value.items():
                    row = _labelled(f"  {name.replace('_', ' ')}: ")
                    row.append(_cell(item))
                    console.print(row)
        else:
            line = _labelled(f"{_label(key)}: ")
            line.append(_cell(value))
            console.print(line)


def _labelled(label: str):
    """A line starting with a bold label; what is appended stays plain."""
    from rich.text import Text

    line = Text()
    line.append(label, style="bold")
    return line


def _contributions(rows) -> float:
    if not isinstance(rows, list):
        return 0.0
    return float(sum(r.get("contribution", 0) for r in rows if isinstance(r, dict)))


def _explain_table(key: str, rows: list[dict], terms_total: float = 0.0):
    """A table of explain records; the question terms' with their total, and
    the related terms' (when one counts) with the BM25 score both make, as
    the "Why this passage" line gives it."""
    from rich import box
    from rich.table import Table

    columns = list(dict.fromkeys(k for row in rows for k in row))
    related = _contributions(rows) if key == "related_terms" else 0.0
    totals = (key == "terms" or related > 0) and "contribution" in columns
    table = Table(
        title=_label(key),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_footer=totals,
        header_style="bold",
        footer_style="bold",
    )
    numeric = {
        c for c in columns if all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
    }
    # A column with any fractional number shows all its numbers with two
    # decimals, so they line up.
    fractional = {c for c in numeric if any(isinstance(r.get(c), float) for r in rows)}
    for i, column in enumerate(columns):
        footer = ""
        if totals and column == "contribution":
            footer = _cell(terms_total + related if key == "related_terms" else _contributions(rows))
        elif totals and i == 0:
            footer = "BM25 score" if key == "related_terms" else "total"
        table.add_column(_label(column), justify="right" if column in numeric else "left", footer=footer)
    for row in rows:
        table.add_row(*(f"{row[c]:.2f}" if c in fractional else _cell(row.get(c, "")) for c in columns))
    return table
