"""Presenting results: JSON records for scripts, rich text for people.

Machine output never carries markup. rich is imported only by the functions
that draw for a person, so `--json` and `--quiet` runs never pay for it.
"""

from __future__ import annotations

import json
from dataclasses import asdict

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
    data = asdict(answer)
    data["matched"] = list(answer.matched)
    if data.get("answer") is None:
        data.pop("answer", None)
    if data.get("explain") is None:
        data.pop("explain", None)
    return data


def to_json(data, indent: int | None = None) -> str:
    # ensure_ascii=False: quotes are verbatim text and stay readable in UTF-8.
    return json.dumps(data, ensure_ascii=False, indent=indent)


def one_line(text: str) -> str:
    return " ".join(text.split())


def quiet_lines(result: Result) -> list[str]:
    """grep-style `path:line:col: quote` lines."""
    return [f"{a.path}:{a.quote.start_line}:{a.quote.start_col}: {one_line(a.quote.text)}" for a in result.answers]


def offset_in_passage(passage_text: str, first_line: int, line: int, col: int) -> int:
    """Character offset in a passage's text of a 1-based document position."""
    offset = 0
    lines = passage_text.split("\n")
    for i in range(line - first_line):
        offset += len(lines[i]) + 1
    return offset + col - 1


def make_console(no_color: bool = False, stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, no_color=no_color or None, emoji=False, markup=False)
    if not console.is_terminal:
        # Piped human output: no wrapping inserted into the text, no styles.
        console = Console(
            stderr=stderr, highlight=False, no_color=True, emoji=False, markup=False, soft_wrap=True, width=10_000
        )
    return console


def print_human(console, result: Result, show_passage: bool = True, explain: bool = False) -> None:
    from rich.text import Text

    if not result.answered:
        console.print(Text(f"No answer: {result.reason}.", style="bold yellow"))
        return
    for answer in result.answers:
        if len(result.answers) > 1:
            console.print(Text(f"#{answer.rank}", style="bold"))
        console.print(_quote_text(answer))
        ref = Text()
        ref.append(f"{answer.path}:{answer.quote.start_line}:{answer.quote.start_col}", style="bold cyan")
        ref.append("  ")
        ref.append(answer.title, style="italic")
        ref.append(f"  score {answer.score:.2f}", style="dim")
        console.print(ref)
        if show_passage:
            print_passage(console, answer)
        console.print()


def _quote_text(answer: Answer):
    from rich.text import Text

    quote = Text("“", style="bold")
    quote.append(one_line(answer.quote.text), style="bold")
    quote.append("”", style="bold")
    short = getattr(answer, "answer", None)
    if short is not None:
        plain = quote.plain
        at = plain.find(one_line(short.text))
        if at >= 0:
            quote.stylize("bold reverse", at, at + len(one_line(short.text)))
    return quote


def print_passage(console, answer: Answer) -> None:
    """The passage with line numbers, the quote highlighted, terms emphasized."""
    from rich.text import Text

    from natoqa import text as textmod

    passage = answer.passage
    q = answer.quote
    q_start = offset_in_passage(passage.text, passage.start_line, q.start_line, q.start_col)
    q_end = offset_in_passage(passage.text, passage.start_line, q.end_line, q.end_col) + 1
    matched = set(answer.matched)
    full = Text(passage.text)
    full.stylize("underline", q_start, q_end)
    for term, start, end in textmod.terms_with_spans(passage.text):
        if term in matched:
            full.stylize("bold magenta", start, end)
    short = getattr(answer, "answer", None)
    if short is not None:
        s_start = offset_in_passage(passage.text, passage.start_line, short.start_line, short.start_col)
        s_end = offset_in_passage(passage.text, passage.start_line, short.end_line, short.end_col) + 1
        full.stylize("reverse", s_start, s_end)
    width = len(str(passage.end_line))
    offset = 0
    for i, line in enumerate(passage.text.split("\n")):
        row = Text(f"{passage.start_line + i:>{width}} │ ", style="dim")
        row.append_text(full[offset : offset + len(line)])
        console.print(row)
        offset += len(line) + 1
