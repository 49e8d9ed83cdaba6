"""Answering questions in one process and writing each result in a chosen format.

A Session holds a loaded index and the answer options; `ask`, the batch
mode and the interactive prompt all go through it, so the three cannot
drift apart in what they answer or how they print it.
"""

from __future__ import annotations

import errno
import sys
import unicodedata

from natoqa.answer import Result, ask
from natoqa.errors import UsageError
from natoqa.index import Index

# A question longer than this is almost surely not a question (a pasted
# file, a runaway pipe); refusing it keeps the time per question bounded.
MAX_QUESTION_CHARS = 2_000

# The most bytes a question line of stdin can take (4 bytes a character in
# UTF-8, and a CRLF): a longer line is refused without being held whole, so
# piping a binary file in keeps memory bounded.
MAX_LINE_BYTES = 4 * MAX_QUESTION_CHARS + 2

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE = 0, 1, 2


def validate_question(question: str) -> str:
    """The question with surrounding white space removed, or UsageError."""
    if len(question) > MAX_QUESTION_CHARS:
        raise UsageError(f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    if question.isprintable():
        # No control character, no surrogate (both unprintable): the check
        # below, in C, for nearly every question.
        return question.strip()
    for col, char in enumerate(question, 1):
        if 0xDC80 <= ord(char) <= 0xDCFF:
            # An undecodable byte of the command line, as Python escapes it.
            raise UsageError(f"the question is not UTF-8 (byte 0x{ord(char) - 0xDC00:02x} at column {col})")
        if char != "\t" and unicodedata.category(char) in ("Cc", "Cs"):
            name = "NUL" if char == "\0" else f"U+{ord(char):04X}"
            raise UsageError(f"the question holds a control character ({name}) at column {col}")
    return question.strip()


class Session:
    def __init__(self, index: Index, top: int = 1, explain: bool = False, ranker=None):
        self.index = index
        self.top = top
        self.explain = explain
        self.ranker = ranker  # with --dense: a natoqa.dense.DenseRanker over the same index

    def answer(self, question: str) -> Result:
        if self.ranker is not None:
            return self.ranker.ask(validate_question(question), self.top, explain=self.explain)
        return ask(self.index, validate_question(question), self.top, explain=self.explain)

    def single(self, question: str, fmt: str, no_color: bool = False) -> int:
        result = self.answer(question)
        writer = Writer(fmt, no_color)
        writer.result(result)
        writer.close()
        return EXIT_OK if result.answered else EXIT_NO_ANSWER

    def batch(self, stream, fmt: str, no_color: bool = False) -> int:
        """Answer one question per line of a binary stream, in order.

        A line that cannot be a question (invalid UTF-8, control characters)
        gets an error record and the run goes on; the exit code is then 2.
        Blank lines are skipped.
        """
        writer = Writer(fmt, no_color, batch=True)
        code = EXIT_OK
        for number, raw, size in _lines(stream, writer):
            try:
                if size > MAX_LINE_BYTES:
                    raw = raw[:MAX_QUESTION_CHARS]
                    raise UsageError(
                        f"the line is {size:,} bytes long; a question may have at most {MAX_QUESTION_CHARS:,} characters"
                    )
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise UsageError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
                if not line.strip():
                    continue
                result = self.answer(line)
            except UsageError as exc:
                writer.error(number, str(exc), raw.decode("utf-8", "replace"))
                code = EXIT_USAGE
                continue
            writer.result(result)
            if not result.answered and code == EXIT_OK:
                code = EXIT_NO_ANSWER
        writer.close()
        return code


def _lines(stream, writer):
    """(number, line, length) for each line of stream: the line without its
    line break, cut to MAX_LINE_BYTES + 1 bytes, and its whole length in bytes."""
    number = 0
    while True:
        try:
            raw = stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            size, tail = len(raw), raw
            while size > MAX_LINE_BYTES and not tail.endswith(b"\n"):
                # The rest of an overlong line is counted and dropped, a chunk at a time.
                tail = stream.readline(64 * 1024)
                if not tail:
                    break
                size += len(tail)
        except OSError as exc:
            writer.close()
            raise UsageError(f"cannot read questions from stdin: {exc.strerror or exc}") from None
        size -= len(tail) - len(tail.rstrip(b"\n").rstrip(b"\r"))
        yield number, raw.rstrip(b"\n").rstrip(b"\r"), size


class Writer:
    """Writes results to stdout in one format; errors for bad lines to stderr too."""

    def __init__(self, fmt: str, no_color: bool = False, batch: bool = False):
        self.fmt = fmt
        self.batch = batch  # --json then prints an array, even of one
        self.no_color = no_color
        self.pending: list[dict] = []
        self._console = None
        self.out = sys.stdout

    @property
    def console(self):
        if self._console is None:
            from natoqa.render import make_console

            self._console = make_console(self.no_color)
            # rich answers a closed pipe with its own exit(1); let the CLI
            # see the BrokenPipeError and exit quietly with 141 instead.
            self._console.on_broken_pipe = _pipe_closed
        return self._console

    def result(self, result: Result) -> None:
        from natoqa import render

        if self.fmt == "jsonl":
            self.out.write(render.to_json(render.result_dict(result)) + "\n")
        elif self.fmt == "json":
            self.pending.append(render.result_dict(result))
        elif self.fmt == "quiet":
            for line in render.quiet_lines(result):
                self.out.write(line + "\n")
        else:
            render.print_human(self.console, result, explain=result_has_explain(result))

    def error(self, line: int, message: str, text: str) -> None:
        from natoqa import render

        if sys.stderr is not None:
            sys.stderr.write(f"natoqa: error: stdin line {line}: {message}\n")
        if self.fmt == "jsonl":
            self.out.write(render.to_json({"question": text, "line": line, "error": message}) + "\n")
        elif self.fmt == "json":
            self.pending.append({"question": text, "line": line, "error": message})

    def close(self) -> None:
        if self.fmt == "json":
            from natoqa import render

            data = self.pending[0] if len(self.pending) == 1 and not self.batch else self.pending
            self.out.write(render.to_json(data, indent=2) + "\n")
        self.out.flush()


def _pipe_closed() -> None:
    raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")


def result_has_explain(result: Result) -> bool:
    return any(getattr(a, "explain", None) is not None for a in result.answers)
