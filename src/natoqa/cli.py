"""The natoqa command line: parse options, call the library, render.

Errors from the library arrive as NatoqaError and are turned into one line
on stderr and an exit code here, in `NatoqaGroup.main`, and nowhere else.

Exit codes: 0 every question answered (or the command succeeded), 1 at least
one question had no answer (for `check`: the pass rate is below the
minimum), 2 bad usage or bad input, 3 the corpus could not be loaded,
70 an internal error (a bug), 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM), 141 the reader of stdout went away (a closed pipe), 128+N a batch's worker process was killed
by signal N from outside natoqa (errors.WorkerKilled).
"""

from __future__ import annotations

import codecs
import errno
import functools
import io
import os
import sys

import click

from natoqa import __version__
from natoqa.errors import NatoqaError, Terminated, UsageError

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE, EXIT_CORPUS = 0, 1, 2, 3
EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PIPE, EXIT_TERMINATED = 70, 130, 141, 143

EXIT_CODES_HELP = """\b
Exit codes:
  0      every question answered
  1      at least one question had no answer
  2      bad usage or bad input
  3      the corpus could not be loaded
  70     an internal error (a bug in natoqa)
  130    interrupted (Ctrl-C)
  143    terminated (SIGTERM: kill, timeout)
  141    the reader of stdout went away
  128+N  a batch's worker process was killed by signal N (137: kill -9)
"""


def _fail(message: str) -> None:
    """One line on stderr: the only form an error takes."""
    from natoqa.render import single_line

    # Messages quote paths and titles from the corpus: their control
    # characters and line breaks are shown, not sent to the terminal, and
    # their spaces kept (a path of two spaces is not one of one).
    message = single_line(str(message))
    if sys.stderr is None:  # started with stderr closed: nowhere to say it
        return
    try:
        sys.stderr.write(f"natoqa: error: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class _Interrupted(Exception):
    """Ctrl-C (or SIGTERM: its first argument), carried past click, which
    would print a blank line for it."""


def _terminated(signum, frame):
    raise Terminated()


def _catch_sigterm():
    """Make SIGTERM end natoqa as Ctrl-C does, with what a batch answered
    written (a `timeout 60 natoqa ask - --json` gave a cut array, and the
    answers still buffered were lost); the handler it replaced, or None
    where natoqa left SIGTERM alone: in a thread other than the main one,
    or where the program running natoqa's main set its own handler."""
    import _signal  # the C module: `signal` would import enum, milliseconds

    try:
        if _signal.getsignal(_signal.SIGTERM) != _signal.SIG_DFL:
            return None
        return _signal.signal(_signal.SIGTERM, _terminated)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        return None


class _PipeClosed(Exception):
    """The reader of stdout went away, carried past click, which would exit 1."""


class NatoqaGroup(click.Group):
    """The top-level group; it owns the translation of errors to exit codes."""

    def invoke(self, ctx):
        # click turns these two into its own exit (code 1 for a closed pipe,
        # a blank line before an Abort); natoqa wants 141 and 130, one line.
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None
        except KeyboardInterrupt as exc:
            raise _Interrupted(isinstance(exc, Terminated)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if sys.stderr is None:
            # Started with stderr closed (`2>&-`): diagnostics, warnings and
            # progress have nowhere to go, and must not crash natoqa.
            sys.stderr = open(os.devnull, "w")  # lives as long as the process
        made_blocking = None
        sigterm = _catch_sigterm()
        store = sys.modules.get("natoqa.store")  # not imported for a run that needs no cache
        if store is not None:
            store.forget_warnings()
        try:
            if sys.stdout is None:
                # Started with stdout closed (`natoqa ... >&-`): every command
                # prints results, so fail before doing the work.
                raise OSError(errno.EBADF, "standard output is closed")
            made_blocking = _blocking_stdout()
            _utf8_stdout()
            _buffer_stdout()
            rv = super().main(args, prog_name or "natoqa", complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
            # Flush here, not at interpreter exit, so a full disk is reported.
            sys.stdout.flush()
        except NatoqaError as exc:
            _fail(str(exc))
            code = exc.exit_code
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(exc.format_message() + hint)
            code = EXIT_USAGE
        except click.ClickException as exc:
            _fail(exc.format_message())
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt, _Interrupted) as exc:
            # SIGTERM as itself, carried past click (invoke), or turned into
            # click's Abort (raised while click parses the options).
            terminated = (
                isinstance(exc, Terminated)
                or (isinstance(exc, _Interrupted) and bool(exc.args) and exc.args[0])
                or isinstance(exc.__cause__ or exc.__context__, Terminated)
            )
            if sys.stderr is not None and sys.stderr.isatty():
                # End the terminal's ^C echo, or the prompt's line.
                sys.stderr.write("\n")
            _fail("terminated" if terminated else "interrupted")
            code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except (BrokenPipeError, _PipeClosed):
            # The reader (say `head -1`) has what it wanted: nothing to say.
            _silence_stdout()
            code = EXIT_PIPE
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                # No write times out: a library's time limit (nltk's
                # regular expressions had one), a bug to report as one.
                code = _internal(exc)
            else:
                # A full disk or a closed stdout: say so in one line.
                _fail(f"cannot write output: {exc.strerror or exc}")
                code = EXIT_USAGE
                _silence_stdout()
        except Exception as exc:
            code = _internal(exc)
        if made_blocking is not None:
            _restore_nonblocking(made_blocking)
        if sigterm is not None:
            _restore_sigterm(sigterm)
        if standalone_mode:
            _exit(code)
        return code


def _restore_sigterm(previous) -> None:
    import _signal

    try:
        _signal.signal(_signal.SIGTERM, previous)
    except (ValueError, OSError):
        pass


def _internal(exc: BaseException) -> int:
    """A bug in natoqa: still one line, unless asked for the details."""
    if os.environ.get("NATOQA_DEBUG"):
        raise exc
    _fail(f"internal error: {type(exc).__name__}: {exc} (a bug in natoqa; NATOQA_DEBUG=1 shows the traceback)")
    return EXIT_INTERNAL


# The stdout natoqa replaced (see _buffer_stdout), kept so that it is never
# collected: collecting it would close file descriptor 1.
_unbuffered = None


def _utf8_stdout() -> None:
    """Encode stdout as UTF-8 whatever the locale or PYTHONIOENCODING say.

    Output is UTF-8 (README, "For scripts"): JSON must be, and the seed
    article's curly quotes have no place in latin-1 or ASCII. Left in such an
    encoding (PYTHONIOENCODING=latin-1, or a pipe on Windows, which Python
    encodes in the ANSI code page), the first quote raised UnicodeEncodeError:
    an internal error, exit 70, for a question that had its answer."""
    out = sys.stdout
    try:
        if codecs.lookup(out.encoding).name == "utf-8":
            return
        out.reconfigure(encoding="utf-8")
    except (AttributeError, LookupError, TypeError, ValueError, OSError):  # not a TextIOWrapper (a test's)
        pass


def _buffer_stdout() -> None:
    """Give stdout a buffered layer when PYTHONUNBUFFERED (or -u) took it away.

    Unbuffered, stdout's text layer hands each write to a single write(2),
    and a short write (the reader closing mid-way, a signal during a large
    write to a pipe) loses the rest without an error: `ask - --json | head -1`
    exited 1 with the array cut, not 141. Buffered, as it is for most users,
    the rest is written or its failure raised. natoqa flushes wherever an
    answer must reach the reader before it waits (session._BeforeWait), so
    nothing else changes; a terminal stays line-buffered."""
    global _unbuffered
    out = sys.stdout
    if not isinstance(getattr(out, "buffer", None), io.RawIOBase):
        return
    try:
        tty = out.isatty()
    except (OSError, ValueError):
        return
    _unbuffered = out
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(out.buffer), encoding=out.encoding, errors=out.errors, line_buffering=tty
    )


def _blocking_stdout() -> int | None:
    """Put stdout in blocking mode when it was left non-blocking (O_NONBLOCK,
    by the program that made the pipe, or on a terminal shared with one that
    set it); its file descriptor then, else None. Non-blocking, a write that
    found the reader's pipe full failed: "cannot write output: write could
    not complete without blocking", exit 2, the output cut, whenever the
    reader was slower than natoqa."""
    try:
        fd = sys.stdout.fileno()
        if os.get_blocking(fd):
            return None
        os.set_blocking(fd, True)
    except (AttributeError, OSError, ValueError):  # not a file descriptor (a test's), or no get_blocking
        return None
    return fd


def _restore_nonblocking(fd: int) -> None:
    """stdout as natoqa found it, for the program that shares it; what is
    buffered is written first, while writes still wait."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.set_blocking(fd, False)
    except (OSError, ValueError):
        pass


def _exit(code: int) -> None:
    workers = sys.modules.get("natoqa.workers")
    if workers is not None and workers.reading():
        # A batch cut short (Ctrl-C, a closed pipe, a failed worker) can
        # leave its reader thread blocked on stdin, holding stdin's lock:
        # the interpreter's shutdown would abort on it. Flush and leave.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: what is left in its buffer has nowhere to
    go (a closed pipe, a failed write already reported), and the
    interpreter's final flush must raise nothing."""
    if sys.stdout is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _corpus_given(ctx, param, value):
    """An empty --corpus is a slip (`--corpus "$DIR"`, DIR unset), not the
    seed article: natoqa would answer, or pass a gate, from another corpus.
    An empty NATOQA_CORPUS is unset, as click reads it."""
    if value == "":
        raise click.BadParameter("needs a corpus path, not an empty one (leave it out for the seed article)")
    return value


def corpus_option(f):
    """--corpus, shared by every command (and NATOQA_CORPUS)."""
    return click.option(
        "--corpus",
        "corpus",
        envvar="NATOQA_CORPUS",
        metavar="PATH",
        callback=_corpus_given,
        help="Corpus folder (with INDEX.md) or a single text file. Default: the bundled seed article. Env: NATOQA_CORPUS.",
    )(f)


def cache_option(f):
    return click.option(
        "--no-cache", is_flag=True, help="Build the index in memory; neither read nor write the on-disk cache."
    )(f)


def output_options(f):
    """Output format options shared by the commands that print results."""
    decorators = [
        click.option(
            "--json", "as_json", is_flag=True, help="Print JSON (one object; an array for several questions)."
        ),
        click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line."),
        click.option("-q", "--quiet", is_flag=True, help="Print only 'path:line:col: quote' lines, grep style."),
        click.option(
            "--no-color",
            is_flag=True,
            help="No colour or styles (also when NO_COLOR is set or stdout is not a terminal).",
        ),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        chosen = [name for name in ("as_json", "as_jsonl", "quiet") if kwargs.get(name)]
        if len(chosen) > 1:
            flags = {"as_json": "--json", "as_jsonl": "--jsonl", "quiet": "--quiet"}
            raise click.UsageError(f"{' and '.join(flags[c] for c in chosen)} cannot be combined")
        return f(*args, **kwargs)

    return wrapper


def _load(corpus: str | None):
    from natoqa.corpus import load_corpus

    loaded = load_corpus(corpus)
    for warning in loaded.warnings:
        _warn(warning)
    return loaded


def _index(corpus, no_cache: bool):
    from natoqa.store import load_index

    return load_index(corpus, use_cache=not no_cache, progress=_indexing_bar(), warn=_warn)


def _open(corpus: str | None, no_cache: bool):
    """The index for `ask`: from the cache without reading every document
    when the cache is current, else the corpus is loaded and indexed."""
    from natoqa.store import open_index

    index = open_index(corpus, use_cache=not no_cache, progress=_indexing_bar(), warn=_warn)
    for warning in index.corpus.warnings:
        _warn(warning)
    return index


def dense_option(f):
    return click.option(
        "--dense",
        is_flag=True,
        help="Re-rank with MiniLM sentence embeddings (the natoqa[dense] extra and its model: see the README).",
    )(f)


def _ranker(index, no_cache: bool):
    """The dense re-ranker over `index`, for --dense; imported only then."""
    try:
        from natoqa.dense import DenseRanker
    except ImportError as exc:  # numpy missing: the extra is not installed
        raise UsageError(f"--dense needs the dense extra: pip install 'natoqa[dense]' ({exc})") from None

    def progress(done: int, total: int) -> None:
        if done == 0 and total >= DENSE_NOTE_PASSAGES:
            _note(f"natoqa: embedding {total:,} passages for --dense (kept in the cache)...")

    return DenseRanker.load(index, use_cache=not no_cache, progress=progress, warn=_warn)


# Embedding this many passages takes a while (about 0.1 s each on one core): worth a note.
DENSE_NOTE_PASSAGES = 100


def _warn(message: str) -> None:
    from natoqa.render import single_line

    _note(single_line(f"natoqa: warning: {message}"))


def _note(line: str) -> None:
    """A line on stderr that the results do not depend on (a warning, a
    note). A stderr that cannot be written (a full disk, a closed pipe)
    loses the line, not the run: raised, its OSError became "cannot write
    output" (a closed pipe, 141 as if stdout's reader had gone) and the
    answers still buffered for stdout were dropped."""
    try:
        click.echo(line, err=True)
    except (OSError, ValueError):
        pass


# --jobs 0 starts one worker a CPU, up to this many: past it the parent's
# reading and writing, one line at a time, is what limits a batch.
MAX_AUTO_JOBS = 4

# A corpus this large takes seconds to index: worth a progress bar.
PROGRESS_PASSAGES = 5_000


def _indexing_bar():
    """A progress callback drawing a bar on stderr, or None when stderr is
    not a terminal; the bar appears only for a large corpus."""
    if not sys.stderr.isatty():
        return None
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total < PROGRESS_PASSAGES:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="natoqa: indexing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return progress


@click.group(
    cls=NatoqaGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
@click.version_option(__version__, "-V", "--version", prog_name="natoqa")
@click.pass_context
def cli(ctx):
    """Answer questions from documents, and quote the line that proves it.

    \b
    Examples:
      natoqa ask "How many troops is the U.S. sending to Poland?"
      natoqa ask --corpus ~/notes "Who approved the budget?" --json
      natoqa show seeds/nato-bolsters-eastern-flank.txt:13
      natoqa check seeds/questions.yaml

    Run 'natoqa COMMAND --help' for each command's options.
    """
    if ctx.invoked_subcommand is None:
        interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
        piped = sys.stdin is not None and not sys.stdin.isatty()
        if interactive or piped:
            # A prompt on a terminal, or questions from a pipe as `ask -`.
            # Parsed rather than ctx.invoke'd, so that NATOQA_CORPUS applies too.
            with ask.make_context("ask", [], parent=ctx) as sub:
                return ask.invoke(sub)
        click.echo(ctx.get_help())
        return EXIT_OK


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("question", nargs=-1)
@click.option(
    "-k", "--top", type=click.IntRange(1, 100), default=1, show_default=True, help="How many answers to show."
)
@click.option("--explain", is_flag=True, help="Show why each passage and sentence were chosen.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(0, 64),
    default=0,
    metavar="N",
    help=(
        "With '-' and --jsonl or -q: answer in N processes"
        f" (default 0: one per CPU, at most {MAX_AUTO_JOBS}; 1: this process only)."
    ),
)
@output_options
@corpus_option
@cache_option
@dense_option
def ask(question, top, explain, jobs, as_json, as_jsonl, quiet, no_color, corpus, no_cache, dense):
    """Answer QUESTION from the corpus with a verbatim, cited quote.

    QUESTION may be several words (no quotes needed). Give '-' to read one
    question per line from stdin and answer each in order.

    \b
    Examples:
      natoqa ask How many troops is the U.S. sending to Poland
      natoqa ask -k 3 "What does Putin want?"
      printf 'Who is Jens Stoltenberg?\\nWhat is NATO?\\n' | natoqa ask - --jsonl
      natoqa ask "Who leads NATO?" --json | jq -r '.answers[0].quote.text'
    """
    from natoqa.session import Session

    if explain and quiet:
        # -q prints one reference line an answer: the numbers had nowhere to go.
        raise click.UsageError(
            "--explain and --quiet cannot be combined (--explain --json gives the numbers to a script)"
        )
    if len(question) > 1 and "-" in (question[0], question[-1]):
        # `ask - "What is NATO?"`, `ask "What is NATO?" -`, `ask -- - --jsonl`:
        # the '-' asks for stdin, but joined to the other words it made one
        # question ("- What is NATO?"), answered while stdin went unread. A
        # dash inside a question ("NATO - and who leads it") stays a word.
        raise click.UsageError(
            "'-' reads the questions from stdin and takes no question with it"
            " (quote a question that starts or ends with '-')"
        )
    words = " ".join(question)
    if question and not words.strip():
        # `natoqa ask "$Q"` with Q unset: a slip in the call, said before
        # the corpus is loaded, not "no answer" (exit 1) as if it were asked.
        raise UsageError("the question is empty (give one as an argument, or '-' to read them from stdin)")
    index = _open(corpus, no_cache)
    session = Session(index, top=top, explain=explain, ranker=_ranker(index, no_cache) if dense else None)
    fmt = "json" if as_json else "jsonl" if as_jsonl else "quiet" if quiet else "human"
    if words == "-" or (not question and sys.stdin is not None and not sys.stdin.isatty()):
        if sys.stdin is None:  # started with `<&-`
            raise UsageError("cannot read questions: standard input is closed")
        if sys.stdin.isatty():
            _note("natoqa: reading questions from the terminal, one a line; end with Ctrl-D.")
        if not jobs:
            from natoqa.workers import available

            jobs = min(available(), MAX_AUTO_JOBS)
        # The process ends with the batch: see Session.batch's `last`.
        return session.batch(sys.stdin.buffer, fmt, no_color, jobs=jobs, last=True)
    if not question:
        if sys.stdout.isatty() and fmt == "human":
            from natoqa.interactive import repl

            def reopen():
                index = _open(corpus, no_cache)
                return index, _ranker(index, no_cache) if dense else None

            return repl(session, no_color, reopen)
        raise UsageError("no question given (give one as an argument, or '-' to read them from stdin)")
    return session.single(words, fmt, no_color)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@corpus_option
def docs(as_json, corpus):
    """List the corpus documents with their passage counts.

    \b
    Examples:
      natoqa docs
      natoqa docs --corpus ../shared/bench/squad-dev/corpus --json | jq length
    """
    loaded = _load(corpus)
    rows = [
        {
            "document": d.id,
            "title": d.title,
            "path": d.path,
            "passages": len(d.passages),
            "lines": len(d.lines),
        }
        for d in loaded.documents
    ]
    if as_json:
        from natoqa.render import to_json

        click.echo(to_json(rows))
        return EXIT_OK
    from natoqa.render import single_line

    width = max(len(str(r["passages"])) for r in rows)
    for r in rows:
        click.echo(single_line(f"{r['passages']:>{width}}  {r['path']}  {r['title']}"))
    return EXIT_OK


@cli.command()
@click.argument("reference")
@corpus_option
def show(reference, corpus):
    """Print the passage at REFERENCE (PATH:LINE, PATH:LINE:COL or
    PATH:FIRST-LAST) with line numbers.

    PATH is a document path as natoqa prints it, or a document id; the
    referenced lines are marked with '>'. A PATH may hold colons: the
    longest that names a document or a file is taken, so notes:2024:3 is
    line 3 of a file named notes:2024 when there is one. A range shows the
    passages it touches, and its blank lines; only blank lines cite nothing.

    \b
    Examples:
      natoqa show seeds/nato-bolsters-eastern-flank.txt:13
      natoqa show nato-bolsters-eastern-flank:13:1
      natoqa show nato-bolsters-eastern-flank:11-15
    """
    from natoqa.lookup import find_reference

    doc, line, last = find_reference(reference, corpus)
    # A blank line alone cites nothing, but a range that starts on one is
    # its lines, as one that ends on one was (show's own header names such
    # ranges): only a range of blank lines has no passage to show.
    if not any(p.start_line <= last and p.end_line >= line for p in doc.passages):
        lines = f"line {line} of {doc.path} is" if line == last else f"lines {line}-{last} of {doc.path} are"
        raise UsageError(f"{reference}: {lines} blank; no passage there")
    # A range runs back to the start of the passage its first line is in,
    # and on to the end of the one its last line is in.
    starting, ending = doc.passage_at(line), doc.passage_at(last)
    start = starting.start_line if starting is not None else line
    end = ending.end_line if ending is not None else last
    from natoqa.render import single_line, visible

    width = len(str(end))
    click.echo(single_line(f"{doc.path}:{start}-{end}  {doc.title}"))
    for number in range(start, end + 1):
        mark = ">" if line <= number <= last else " "
        click.echo(f"{mark}{number:>{width}} │ {visible(doc.lines[number - 1])}")
    return EXIT_OK


CHECK_EXIT_HELP = """\b
Exit codes:
  0      the pass rate is at least --min-pass-rate
  1      the pass rate is below it
  2      a questions file is invalid (or bad usage)
  3      a corpus could not be loaded
  70     an internal error (a bug in natoqa)
  130    interrupted (Ctrl-C)
  143    terminated (SIGTERM: kill, timeout)
  141    the reader of stdout went away
"""


@cli.command(epilog=CHECK_EXIT_HELP)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--min-pass-rate",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Exit 0 when at least this share of cases pass (0.8, not 80).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report (every case and the summary).")
@click.option("--junit", "junit", metavar="PATH", help="Also write a JUnit XML report to PATH.")
@click.option(
    "--record", is_flag=True, help="Fill in 'document' and 'line' of entries that lack them, from the current answers."
)
@click.option("--in-place", is_flag=True, help="With --record: rewrite FILE itself.")
@click.option("-o", "--output", metavar="NEW", help="With --record: write the result to a new file NEW.")
@click.option("--no-color", is_flag=True, help="No colour in the report.")
@corpus_option
@cache_option
@dense_option
@click.pass_context
def check(ctx, files, min_pass_rate, as_json, junit, record, in_place, output, no_color, corpus, no_cache, dense):
    """Run known questions from YAML FILEs and fail when answers drift.

    Each case passes when natoqa's answer comes from the expected document
    and passage and its quote holds one of the expected answers, or, for
    'answerable: false', when natoqa abstains. The corpus is --corpus, else
    the file's own 'corpus:' (relative to the file), else NATOQA_CORPUS,
    else the seed article.

    \b
    Examples:
      natoqa check seeds/questions.yaml
      natoqa check questions.yaml --junit report.xml
      natoqa check ../shared/bench/squad-dev/questions.yaml \\
          --corpus ../shared/bench/squad-dev/corpus --min-pass-rate 0
      natoqa check new.yaml --record -o recorded.yaml
    """
    import math
    import time

    from natoqa import check as checkmod

    if math.isnan(min_pass_rate):
        raise click.BadParameter("must be a number from 0 to 1, not nan", param_hint="'--min-pass-rate'")
    for name, value in (("--junit", junit), ("--output", output)):
        if value is not None and not value.strip():
            raise click.UsageError(f"{name} needs a file path, not an empty one")
    if record and (junit or as_json):
        raise click.UsageError("--record writes questions files, not reports: drop --junit and --json")
    if as_json and junit and _is_stdout(junit):
        raise click.UsageError("--junit names standard output, where --json writes: give --junit a file")
    if (in_place or output) and not record:
        raise click.UsageError("--in-place and --output go with --record")
    if in_place and output:
        raise click.UsageError("--in-place and --output cannot be combined")
    if output and len(files) != 1:
        raise click.UsageError("--output takes a single FILE")
    if output and os.path.exists(output):
        raise UsageError(f"{output}: already exists; --record writes only to a new file (or use --in-place)")
    if in_place:
        # Said before the run, which can take minutes, rather than after it.
        for f in files:
            try:
                found = os.stat(f)
            except (OSError, ValueError):
                continue  # read_check_file says what is wrong with it
            checkmod.refuse_not_rewritable(f, found)
    if junit and os.path.exists(junit) and any(_same_file(junit, f) for f in files):
        # A slip of the fingers must not turn the user's questions into XML.
        raise UsageError(f"{junit}: is a questions file being checked; give --junit another path")
    for target in (junit, output):
        if target is not None:
            checkmod.refuse_unwritable(target)  # before the run, not after it
    started = time.perf_counter()
    check_files = [checkmod.read_check_file(f) for f in files]
    from click.core import ParameterSource

    from_command_line = ctx.get_parameter_source("corpus") == ParameterSource.COMMANDLINE
    environment = os.environ.get("NATOQA_CORPUS") or None
    corpora, indexes = {}, {}
    plan = []
    for cf in check_files:
        location = corpus if from_command_line else cf.corpus or environment
        key = location or ""
        if key not in corpora:
            if not from_command_line and cf.corpus and not os.path.exists(cf.corpus):
                # The file named it: say which file, or the user hunts for
                # a folder they never typed.
                from natoqa.errors import CorpusError

                raise CorpusError(f"{cf.path}:{cf.corpus_line}: 'corpus' names {location}, which does not exist")
            corpora[key] = _load(location)
        checkmod.validate_against(cf, corpora[key])
        plan.append((cf, key))
    if junit and os.path.exists(junit):
        # A slip of the fingers must not overwrite the corpus either. (An
        # existing --output was refused above.)
        for loaded in corpora.values():
            if any(_same_file(junit, f) for f in _corpus_files(loaded)):
                raise UsageError(f"{junit}: is a file of the corpus {loaded.root}; give --junit another path")
    for key, loaded in corpora.items():
        indexes[key] = _index(loaded, no_cache)
    rankers = {key: _ranker(index, no_cache) for key, index in indexes.items()} if dense else {}
    total = sum(len(cf.cases) for cf in check_files)
    with _progress(total, "checking") as advance:
        reports = [checkmod.run(cf, indexes[key], progress=advance, ranker=rankers.get(key)) for cf, key in plan]
    seconds = time.perf_counter() - started
    if record:
        return _record(checkmod, reports, in_place, output)
    from natoqa import report

    # `--junit /dev/stdout | ...`: the XML is stdout, so the report a person
    # reads goes to stderr (after the XML, it made the XML unreadable).
    junit_out = bool(junit) and _is_stdout(junit)
    if junit:
        checkmod.write_atomically(junit, report.junit_xml(reports))
    if as_json:
        from natoqa.render import to_json

        click.echo(to_json(report.json_report(reports, seconds, min_pass_rate), indent=2))
    else:
        color = False if no_color or os.environ.get("NO_COLOR") else None

        def style(text, fg):
            return click.style(text, fg=fg, bold=True)

        for line in report.human_lines(reports, seconds, min_pass_rate, style):
            click.echo(line, color=color, err=junit_out)
    rate = report.pass_rate([o for r in reports for o in r.outcomes])
    return EXIT_OK if rate >= min_pass_rate else EXIT_NO_ANSWER


def _corpus_files(loaded) -> list[str]:
    from natoqa.corpus import INDEX_NAME

    files = [d.path for d in loaded.documents]
    if os.path.isdir(loaded.root):
        files.append(os.path.join(loaded.root, INDEX_NAME))
    return files


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _is_stdout(path: str) -> bool:
    """Whether path is this process's standard output (`/dev/stdout`, a
    pipe's /proc/self/fd/1)."""
    from natoqa.check import is_standard_stream

    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return False
    return is_standard_stream(found, (1,))


def _record(checkmod, reports, in_place: bool, output: str | None) -> int:
    import difflib

    for r in reports:
        cf = r.check_file
        recording = checkmod.record(cf, r, output)
        for why in recording.skipped:
            _warn(f"{cf.path}: {why}")
        if not recording.recorded:
            click.echo(f"natoqa: {cf.path}: nothing to record", err=True)
            continue
        target = output or cf.path
        diff = [
            # A last line without its line end, marked as diff and patch do
            # (unmarked, it ran into the next line of the diff).
            line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
            for line in difflib.unified_diff(
                cf.text.splitlines(keepends=True),
                recording.new_text.splitlines(keepends=True),
                fromfile=cf.path,
                tofile=target,
            )
        ]
        if in_place or output:
            # Written first: a path that cannot be written shows no change.
            checkmod.write_atomically(target, recording.new_text)
            click.echo("".join(diff), nl=False)
            n = len(recording.recorded)
            click.echo(
                f"natoqa: recorded where the answer is (document, line) for {n} entr{'y' if n == 1 else 'ies'} in {target}",
                err=True,
            )
            if recording.moved:
                click.echo(f"natoqa: {target}: 'corpus' now reads {recording.moved}, from its own folder", err=True)
        else:
            click.echo("".join(diff), nl=False)
            click.echo(
                f"natoqa: {cf.path}: not written; add --in-place to update it, or -o NEW to write a new file", err=True
            )
    return EXIT_OK


class _progress:
    """A progress bar on stderr for long runs on a terminal; otherwise nothing."""

    def __init__(self, total: int, label: str, threshold: int = 200):
        self.total, self.label = total, label
        self.show = total >= threshold and sys.stderr.isatty()
        self._progress = None

    def __enter__(self):
        if not self.show:
            return None
        from rich.progress import Progress

        from natoqa.render import make_console

        self._progress = Progress(console=make_console(stderr=True), transient=True)
        self._progress.start()
        task = self._progress.add_task(self.label, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
        return False


def main():
    cli.main(prog_name="natoqa")
