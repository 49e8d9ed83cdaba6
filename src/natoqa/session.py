"""Answering questions in one process and writing each result in a chosen format.

A Session holds a loaded index and the answer options; `ask`, the batch
mode and the interactive prompt all go through it, so the three cannot
drift apart in what they answer or how they print it.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import select
import stat
import sys
import unicodedata

from natoqa.answer import Result, ask, expect
from natoqa.corpus import file_digest, signatures
from natoqa.errors import CorpusError, NatoqaError, UsageError
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
        self._signed = None  # (index, its corpus's signed()), see _check_unchanged

    def answer(self, question: str) -> Result:
        collect_if_due()
        if self.ranker is not None:
            result = self.ranker.ask(validate_question(question), self.top, explain=self.explain)
        else:
            result = ask(self.index, validate_question(question), self.top, explain=self.explain)
        self._check_unchanged(result)
        return result

    def _check_unchanged(self, result: Result) -> None:
        """CorpusError when a document an answer quotes has changed on disk
        since it was read. A batch keeps the text it read (in memory, or
        from the cache once checked): after an edit its quotes cited lines
        that no longer held them, exit 0. One stat a document quoted; the
        signatures follow the index (the prompt opens a new one on an edit)."""
        if not result.answers:
            return
        if self._signed is None or self._signed[0] is not self.index:
            signed = getattr(self.index.corpus, "signed", None)
            self._signed = (self.index, signed() if signed is not None else {})
        known = self._signed[1]
        checked = set()
        for answer in result.answers:
            if answer.document in checked or answer.document not in known:
                continue
            checked.add(answer.document)
            source, before, sha256 = known[answer.document]
            now = signatures((source,))[0]
            if now == before:
                continue
            # Its times moved: a file saved unchanged (`touch`, a checkout)
            # is no change, and its content says so.
            try:
                same = now is not None and file_digest(source) == sha256
            except (OSError, ValueError):
                same = False
            if not same:
                raise CorpusError(f"{answer.path}: the document changed while natoqa was answering; run again")
            known[answer.document] = (source, now, sha256)

    def single(self, question: str, fmt: str, no_color: bool = False) -> int:
        result = self.answer(question)
        writer = Writer(fmt, no_color)
        writer.result(result)
        writer.close()
        return EXIT_OK if result.answered else EXIT_NO_ANSWER

    def batch(self, stream, fmt: str, no_color: bool = False, jobs: int = 1, last: bool = False) -> int:
        """Answer one question per line of a binary stream, in order.

        A line that cannot be a question (invalid UTF-8, control characters)
        gets an error record and the run goes on; the exit code is then 2.
        Blank lines are skipped. With jobs > 1, the JSON Lines and quiet
        formats answer in that many worker processes (natoqa.workers) once
        the batch is past its first SERIAL_FIRST questions; the output is
        the same, in the same order. What the rest of the batch will need is
        loaded after those first questions (answer.expect), when what is
        waiting shows it is long: the rest of a file, the lines a pipe holds.
        The rest of the batch runs with the cyclic collector off (see
        GC_AFTER); `last` says the process ends after the batch (see
        collector_paused).
        """
        writer = Writer(fmt, no_color, batch=True)
        waiting = _BeforeWait(stream, writer.out)
        lines = _questions(_lines(stream, waiting))
        parallel = jobs > 1 and fmt in ("jsonl", "quiet") and self.ranker is None and hasattr(os, "fork")
        start = _offset(stream)
        # A stdin left non-blocking read as ended: see _blocking.
        with _blocking(stream):
            try:
                code, unread = self._serial(lines, writer, SERIAL_FIRST)
                if unread:
                    # How long the batch is, as far as can be told (the rest of a
                    # file; what a pipe already holds): what that many questions
                    # will need is loaded now, before any worker forks, so that
                    # the workers share it instead of each loading it later.
                    expect(
                        self.index,
                        _lines_left(stream, start, SERIAL_FIRST) if start is not None else _lines_waiting(stream),
                    )
                    with collector_paused(last):
                        later = (
                            self._rest(lines, writer, waiting, jobs)
                            if parallel
                            else self._serial(lines, writer, None)[0]
                        )
                    # Codes rank 2 (a bad line) over 1 (a question unanswered) over 0.
                    code = max(code, later)
            except (NatoqaError, KeyboardInterrupt):
                # stdin failed, a document changed under the index (exit 3,
                # "run again"), or Ctrl-C (exit 130): what was answered is still
                # written, a --json array closed.
                writer.close()
                raise
            writer.close()
            return code

    def _rest(self, lines, writer: Writer, waiting: _BeforeWait, jobs: int) -> int:
        """Answer the rest of the lines in `jobs` worker processes."""
        from natoqa import workers

        # From here stdin is read by the workers' reader thread, and stdout
        # written by this one: it flushes (see answer_all).
        waiting.out = None
        try:
            return workers.answer_all(self, lines, writer, writer.text, jobs)
        except workers.Unavailable:
            # No pipe or process to be had (too many open files, no
            # memory): the rest is answered here, as with -j 1.
            waiting.out = writer.out
            return self._serial(lines, writer, None)[0]

    def _serial(self, lines, writer: Writer, limit: int | None) -> tuple[int, bool]:
        """Answer in this process every line, or the first `limit` questions:
        (exit code, whether lines may be left)."""
        code = EXIT_OK
        answered = 0
        for number, line, error, shown in lines:
            if error is None:
                try:
                    result = self.answer(line)
                except UsageError as exc:
                    error = str(exc)
            if error is not None:
                writer.error(number, error, shown)
                code = EXIT_USAGE
                continue
            writer.result(result)
            if not result.answered and code == EXIT_OK:
                code = EXIT_NO_ANSWER
            answered += 1
            if limit is not None and answered >= limit:
                return code, True
        return code, False


# A batch answers this many questions in its own process before it starts
# workers: a few questions are answered before a fork would finish (about
# 2 ms), and the first loads what every worker then shares. Past them the
# other core helps: 2,000 seed questions, 15 interleaved runs each, median
# wall against 50: 655 -> 603 ms, and 596 -> 563 ms in a second set.
SERIAL_FIRST = 10


# A batch makes no garbage that only the cyclic collector could free: after
# 1,000 SQuAD 2.0 questions with it off, gc.collect() found nothing
# unreachable among the 289,079 objects kept (the memos). Left on, it
# rescans those memos as they grow: 3% of a question's instructions there
# in one process, and as much again as the collector, back on, scanned
# them all before the exit (see collector_paused). So past its first
# questions a batch turns it off, and collects only when GC_AFTER more
# objects than were freed have been made since the last time: a bound on
# what the collector is left to find, should something ever make cycles
# (it counts objects, not bytes).
GC_AFTER = 1_000_000


@contextlib.contextmanager
def collector_paused(last: bool):
    """The cyclic garbage collector off for the block (workers forked in it
    inherit that), on again after, unless it was off already. When the
    process ends after the block (`last`), every object is frozen before:
    turned on, the collector would otherwise scan all the block made and
    kept at once (the memos, all of it young to the collector), some 70 ms
    after 1,000 SQuAD 2.0 questions, only to exit. Otherwise that scan is
    the collector's due: it frees what the block left in cycles."""
    global _paused
    if not gc.isenabled():
        yield
        return
    try:
        gc.disable()
        _paused = True
        yield
    finally:
        _paused = False
        if last:
            gc.freeze()
        gc.enable()


# Whether collector_paused has the collector off (a worker forked in the
# block inherits it): only then does collect_if_due collect, so a caller's
# own choice to turn it off is left alone.
_paused = False


def collect_if_due() -> None:
    """Between two questions of a long run (see collector_paused): past
    GC_AFTER, collect what the collector would have."""
    if _paused and gc.get_count()[0] > GC_AFTER:
        _collect()


def _collect() -> None:
    """Collect, then freeze what survives: the memos are not rescanned at
    the next GC_AFTER (they are reachable; no later collection frees them,
    should they ever end in a cycle)."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def _blocking(stream):
    """stdin in blocking mode for the block, as it was after. A stdin left
    non-blocking (O_NONBLOCK, set by the program that made the pipe, or on a
    terminal another program shares) reads as its end whenever no line has
    arrived yet: the batch answered the first questions and exited 0, the
    rest unread (and a read that finds half a line returns that half)."""
    try:
        fd = stream.fileno()
        was = os.get_blocking(fd)
    except (AttributeError, OSError, ValueError):  # a test's BytesIO; no get_blocking (old Windows)
        yield
        return
    if was:
        yield
        return
    try:
        os.set_blocking(fd, True)
    except OSError:
        yield  # left as it is: nothing better to do
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.set_blocking(fd, False)


def _offset(stream) -> int | None:
    """Where a regular file's reading stands; None for a pipe, a terminal,
    anything else."""
    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return None
        return stream.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _lines_left(stream, start: int | None, read: int) -> int:
    """About how many lines are left in a regular file read from offset
    `start` for `read` lines: the lines of its next LOOKAHEAD bytes,
    counted (all of them, for a rest that short), and past those as many
    as their length implies. 0 when it cannot tell (a pipe, a terminal)."""
    at = _offset(stream) if start is not None else None
    if at is None or at < start:
        return 0
    try:
        fd = stream.fileno()
        rest = max(0, os.fstat(fd).st_size - at)
        # pread leaves the file's position, and so the stream, as it is.
        sample = os.pread(fd, min(rest, LOOKAHEAD), at) if rest else b""
    except (AttributeError, OSError, ValueError):
        return 0
    lines = sample.count(b"\n") + (1 if sample and not sample.endswith(b"\n") and len(sample) == rest else 0)
    if len(sample) < rest:
        # Past the sample, at its line length (or the first lines' length).
        per_line = len(sample) / lines if lines else (at - start) / max(read, 1)
        lines += int((rest - len(sample)) / per_line) if per_line else 0
    return lines


# How far past the first lines a batch looks in a file to count its lines.
LOOKAHEAD = 64 * 1024


def _lines_waiting(stream) -> int:
    """About how many lines of a pipe (a terminal, a socket) have arrived
    and wait to be read: those its buffer holds and, at their length, the
    bytes the system holds for it. 0 when it cannot tell. (`cat file |`
    has filled the pipe by the time the first questions are answered.)"""
    try:
        import fcntl
        import struct
        import termios

        fd = stream.fileno()

        def pending() -> int:
            return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]

        if pending() <= 0:
            return 0  # a read of the buffer could wait
        held = stream.peek(1)  # bytes are pending: this does not wait
        rest = pending()
    except (ImportError, AttributeError, OSError, ValueError):
        return 0
    lines = held.count(b"\n")
    return (len(held) + rest) * lines // len(held) if lines else 0


def _questions(lines):
    """(number, question, error, shown) for each line that is not blank: the
    line as text and None, or None and why it cannot be a question; `shown`
    is the line as an error record quotes it."""
    for number, raw, size in lines:
        if size > MAX_LINE_BYTES:
            shown = raw[:MAX_QUESTION_CHARS].decode("utf-8", "replace")
            yield (
                number,
                None,
                f"the line is {size:,} bytes long; a question may have at most {MAX_QUESTION_CHARS:,} characters",
                shown,
            )
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                None,
                f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                raw.decode("utf-8", "replace"),
            )
            continue
        if line.strip():
            yield number, line, None, line


class _BeforeWait:
    """Called before each line of stdin is read: when no input is ready
    (the questions come from a person or a co-process, not a file), stdout
    is flushed first, so every answer written is seen before natoqa waits
    for the next question. A file, always ready, never costs a flush."""

    def __init__(self, stream, out):
        self.out = out
        self.fd = None
        if os.name == "nt":
            return  # select() takes sockets only there
        try:
            fd = stream.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.fd = fd
        except (AttributeError, OSError, ValueError):
            pass  # not a file descriptor (a test's BytesIO): nothing to wait on

    def __call__(self) -> None:
        if self.fd is None or self.out is None:
            return
        try:
            ready = select.select([self.fd], [], [], 0)[0]
        except (OSError, ValueError):
            ready = True
        if not ready:
            self.out.flush()


def _lines(stream, before_wait=None):
    """(number, line, length) for each line of stream: the line without its
    line break, cut to MAX_LINE_BYTES + 1 bytes, and its whole length in bytes."""
    number = 0
    head, size = b"", 0  # the line so far: its first MAX_LINE_BYTES + 1 bytes, its length
    for piece, ended in _pieces(stream, before_wait):
        if size <= MAX_LINE_BYTES:
            # The rest of an overlong line is counted and dropped.
            head += piece[: MAX_LINE_BYTES + 1 - size]
        size += len(piece)
        if ended:
            number += 1
            yield _line(number, head, size)
            head, size = b"", 0
    if size:  # a last line without a line break
        yield _line(number + 1, head, size)


def _line(number: int, raw: bytes, size: int) -> tuple[int, bytes, int]:
    if number == 1 and raw.startswith(_BOM):
        # A file saved with a byte order mark (as Windows editors do):
        # an encoding artefact, not part of the first question.
        raw, size = raw[len(_BOM) :], size - len(_BOM)
    return number, raw, size


# A line of stdin ends where a document's does (natoqa.corpus): at LF, CRLF
# or a lone CR (a file saved by a classic Mac OS editor), so `stdin line N`
# is the line an editor shows as N.
_LINE_END = re.compile(rb"\r\n|\r|\n")

# The most a read takes; a longer line is read in pieces this long.
READ_BYTES = 64 * 1024


def _pieces(stream, before_wait=None):
    """The stream read a line at a time (before_wait called before each
    read) and cut at its line ends: (bytes, ended) pairs, `ended` when a
    line end followed. Lines are read up to an LF only, as readline reads
    them, so a co-process's LF- or CRLF-ended question is answered as soon
    as it is written; text with lone CRs is split once an LF or the end of
    the input (or READ_BYTES) ends the read."""
    cr_last = False  # the last read ended at a CR: an LF first in the next one is its CRLF's
    while True:
        if before_wait is not None:
            before_wait()
        try:
            chunk = stream.readline(READ_BYTES)
        except OSError as exc:
            raise UsageError(f"cannot read questions from stdin: {exc.strerror or exc}") from None
        if not chunk:
            return
        if cr_last and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        cr_last = chunk.endswith(b"\r")
        if b"\r" not in chunk:  # nearly every line: no regular expression
            if chunk.endswith(b"\n"):
                yield chunk[:-1], True
            elif chunk:
                yield chunk, False
            continue
        *ended, last = _LINE_END.split(chunk)
        for piece in ended:
            yield piece, True
        if last:
            yield last, False


_BOM = b"\xef\xbb\xbf"


class Writer:
    """Writes results to stdout in one format; errors for bad lines to stderr too."""

    def __init__(self, fmt: str, no_color: bool = False, batch: bool = False):
        self.fmt = fmt
        self.batch = batch  # --json then prints an array, even of one
        self.no_color = no_color
        self.pending: list[dict] = []
        self._console = None
        self._render = None  # natoqa.render, once text() has imported it
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
        if self.fmt in ("jsonl", "quiet"):
            self.out.write(self.text(result))
        elif self.fmt == "json":
            from natoqa import render

            self.pending.append(render.result_dict(result))
        else:
            from natoqa import render

            render.print_human(self.console, result, explain=result_has_explain(result))

    def text(self, result: Result) -> str:
        """What the JSON Lines or quiet format writes for a result (also
        what a worker process sends back for it, see natoqa.workers)."""
        render = self._render
        if render is None:
            # Imported once: `from natoqa import render` run in every call
            # costs it importlib's _handle_fromlist, 4,000 instructions.
            from natoqa import render

            self._render = render
        if self.fmt == "jsonl":
            return render.to_json(render.result_dict(result)) + "\n"
        return "".join(line + "\n" for line in render.quiet_lines(result))

    def write_text(self, text: str) -> None:
        self.out.write(text)

    def error(self, line: int, message: str, text: str) -> None:
        from natoqa import render

        if sys.stderr is not None:
            # The line is also the record below (--jsonl, --json) and the
            # exit code 2: a stderr that cannot be written (full, a closed
            # pipe) must not end the batch and drop the answers before it.
            try:
                sys.stderr.write(f"natoqa: error: stdin line {line}: {message}\n")
            except (OSError, ValueError):
                pass
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
