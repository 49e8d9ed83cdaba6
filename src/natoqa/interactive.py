"""The interactive prompt: ask question after question of one loaded corpus.

`natoqa` (or `natoqa ask` with no question) on a terminal comes here. Lines
are read with readline, so the usual line editing works, and the history is
kept across sessions in the user's data directory. A line starting with ':'
is a command (`:help` lists them); any other line is a question, answered
through the same Session as `natoqa ask`, so the two cannot disagree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from natoqa import corpus as corpusmod
from natoqa.errors import CorpusError, NatoqaError, Terminated
from natoqa.render import single_line, visible
from natoqa.session import Session

PROMPT = "natoqa> "
HISTORY_LENGTH = 1_000
MAX_TOP = 100

HELP = """\
Type a question and press Enter. Commands:
  :top N     show N answers per question (now {top})
  :explain   show why each passage and sentence won (now {explain}; or :explain on|off)
  :json      print the JSON record instead (now {json}; or :json on|off)
  :docs      list the corpus documents
  :help      this help
  :quit      leave (Ctrl-D does too)"""

COMMANDS = (":top", ":explain", ":json", ":docs", ":help", ":quit")
ALIASES = {":exit": ":quit", ":?": ":help"}


def history_path() -> Path:
    """$XDG_DATA_HOME/natoqa/history, else ~/.local/share/natoqa/history.

    A relative XDG_DATA_HOME is ignored, as the XDG spec says and as the
    cache's XDG_CACHE_HOME is (natoqa.store.cache_dir): taken as it was, it
    put a `natoqa/history` folder in whatever folder the prompt was opened
    in, and each folder had a history of its own."""
    base = os.environ.get("XDG_DATA_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "natoqa" / "history"


class Repl:
    """The prompt loop's state and its commands; reading and writing are injected
    so that tests and the terminal share the same logic."""

    def __init__(self, session: Session, console, err_console, reopen=None):
        self.session = session
        self.console = console
        self.err = err_console
        self.json = False
        self.done = False
        # `reopen()` gives (index, ranker) for the corpus as it is now. A
        # prompt stays open while its user edits the documents: answered
        # from the index of before, a quote would cite lines that no longer
        # hold it. So each question first checks the corpus's files
        # (current), and a change opens the corpus again.
        self.reopen = reopen
        self.seen = corpusmod.signatures(session.index.corpus.files()) if reopen else ()

    def current(self) -> bool:
        """Whether the session's index is the corpus's as its files are now,
        opening it again if a file changed; False (the error shown) when
        the changed corpus cannot be loaded."""
        if self.reopen is None:
            return True
        files = self.session.index.corpus.files()
        # Taken before the corpus is read again: a change made while it is
        # read shows at the next question.
        now = corpusmod.signatures(files)
        if now == self.seen:
            return True
        try:
            index, ranker = self.reopen()
        except NatoqaError as exc:
            self.error(f"the corpus changed and cannot be loaded: {exc}")
            return False
        old = self.session.index.corpus
        # A file saved unchanged (only its times moved) is no change to say.
        changed = (index.corpus.fingerprint(), index.corpus.title) != (old.fingerprint(), old.title)
        self.session.index, self.session.ranker = index, ranker
        files_now = index.corpus.files()
        self.seen = now if files_now == files else corpusmod.signatures(files_now)
        if changed:
            self.note(f"the corpus changed; now {_size(index.corpus)}")
        return True

    def handle(self, line: str) -> None:
        """One line typed at the prompt."""
        line = line.strip()
        if not line:
            return
        if line.startswith(":"):
            self.command(line)
            return
        if line.lower() in _BARE_COMMANDS:
            # "quit" or "help" typed as a shell or a REPL takes them: no
            # question, and answering it found a passage on the word.
            self.note(f"commands start with ':' (:{line.lower()}); :help lists them")
            return
        if not self.current():
            return
        try:
            try:
                result = self.session.answer(line)
            except CorpusError:
                if self.reopen is None:
                    raise
                # A document the answer quotes changed since it was read,
                # though the files' signatures say nothing: the prompt took
                # them after the change (made while the corpus was read, or
                # --dense embedded it), and every question would meet this
                # again. The corpus is opened again, the question asked of it.
                self.seen = ()
                if not self.current():
                    return
                result = self.session.answer(line)
        except NatoqaError as exc:
            self.error(str(exc))
            return
        from natoqa import render

        if self.json:
            # Plain JSON, exactly as `ask --json` prints it, ready to copy.
            self.console.print(render.to_json(render.result_dict(result), indent=2), soft_wrap=True)
        else:
            render.print_human(self.console, result, explain=self.session.explain)

    def command(self, line: str) -> None:
        name, _, arg = line.partition(" ")
        name, arg = name.lower(), arg.strip()
        name = ALIASES.get(name, name)
        matches = [c for c in COMMANDS if c.startswith(name)] if len(name) > 1 else []
        if not matches and len(name) > 1:
            # A prefix of an alias alone (`:exi`); `:e` and `:ex` stay :explain's.
            matches = list(dict.fromkeys(ALIASES[a] for a in ALIASES if a.startswith(name)))
        if len(matches) != 1:
            known = " ".join(COMMANDS)
            self.error(f"unknown command {name!r}; the commands are {known}")
            return
        name = matches[0]
        flip = True  # for :explain and :json
        if arg and name in (":explain", ":json"):
            # Each turns its setting over; told on or off, it sets it. An
            # argument was ignored: `:json off`, typed with JSON off, turned
            # it on.
            if arg.lower() not in ("on", "off"):
                self.error(f"{name} takes on, off or nothing (to turn it over), not {arg!r}")
                return
            flip = (arg.lower() == "on") != (self.session.explain if name == ":explain" else self.json)
        elif arg and name != ":top":
            # Not ignored either: `:docs birds` or `:quit now` did what the
            # bare command does, as if the rest had been understood.
            self.error(f"{name} takes no argument, not {arg!r}")
            return
        if name == ":top":
            if not arg:
                self.note(f"showing {self.session.top} answer(s) per question")
                return
            # ASCII digits only, few of them: isdigit() passes "²", which
            # int() refuses, and int() refuses over 4,300 digits.
            if not (arg.isascii() and arg.isdigit() and len(arg) <= 6) or not 1 <= int(arg) <= MAX_TOP:
                self.error(f":top takes a whole number from 1 to {MAX_TOP}, not {arg!r}")
                return
            self.session.top = int(arg)
            self.note(f"showing {self.session.top} answer(s) per question")
        elif name == ":explain":
            if flip:
                self.session.explain = not self.session.explain
            self.note("explanations " + ("on" if self.session.explain else "off"))
        elif name == ":json":
            if flip:
                self.json = not self.json
            self.note("JSON output " + ("on" if self.json else "off"))
        elif name == ":docs":
            if self.current():
                self.docs()
        elif name == ":help":
            self.note(
                HELP.format(
                    top=self.session.top,
                    explain="on" if self.session.explain else "off",
                    json="on" if self.json else "off",
                )
            )
        elif name == ":quit":
            self.done = True

    def docs(self) -> None:
        from rich.text import Text

        documents = self.session.index.corpus.documents
        width = max(len(str(len(d.passages))) for d in documents)
        for d in documents:
            row = Text(f"{len(d.passages):>{width}}  ")
            # One row a document, as `natoqa docs` prints: a file name may
            # hold a line break.
            row.append(single_line(d.path), style="bold")
            row.append(f"  {single_line(d.title)}")
            self.console.print(row)

    # Messages name corpus titles, paths and the user's words: their control
    # characters are shown, never sent to the terminal (natoqa.render.visible).
    def note(self, message: str) -> None:
        from rich.text import Text

        self.err.print(Text(visible(message), style="dim"))

    def error(self, message: str) -> None:
        from rich.text import Text

        # One line, as the command line's errors are: a path may hold a line break.
        self.err.print(Text(f"natoqa: error: {single_line(message)}", style="bold"))


# Commands typed without their colon: no question is one word of these.
_BARE_COMMANDS = frozenset(("help", "quit", "exit"))


def _size(corpus) -> str:
    """The corpus's title and size: "Title: 3 documents, 40 passages"."""
    n_docs, n_passages = len(corpus.documents), len(corpus.passages)
    return (
        f"{corpus.title or 'corpus'}: {n_docs} document{'s' * (n_docs != 1)}, "
        f"{n_passages} passage{'s' * (n_passages != 1)}"
    )


def repl(session: Session, no_color: bool = False, reopen=None) -> int:
    """Read questions at a prompt until :quit or Ctrl-D; exit code 0.

    Ctrl-C abandons the line being typed (or the answer being drawn) and
    gives a fresh prompt, as shells do. `reopen`: see Repl.
    """
    from natoqa.render import make_console

    console = make_console(no_color)
    loop = Repl(session, console, make_console(no_color, stderr=True), reopen)
    loop.note(f"{_size(session.index.corpus)}. Ask a question; :help lists commands, Ctrl-D leaves.")
    history = _start_readline()
    try:
        while not loop.done:
            try:
                line = input(PROMPT)
            except EOFError:
                sys.stdout.write("\n")
                break
            except Terminated:
                raise  # SIGTERM ends the prompt; Ctrl-C only clears the line
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                continue
            try:
                loop.handle(line)
            except Terminated:
                raise
            except KeyboardInterrupt:
                sys.stdout.write("\n")
    finally:
        _save_history(history, loop)
    return 0


def _start_readline():
    """Line editing, :command completion and the saved history, where readline exists."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    path = history_path()
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # no history yet
    readline.set_history_length(HISTORY_LENGTH)
    start = readline.get_current_history_length()

    def complete(text: str, state: int):
        options = [c for c in COMMANDS if c.startswith(text)] if text.startswith(":") else []
        return options[state] if state < len(options) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")  # macOS's readline is libedit
    else:
        readline.parse_and_bind("tab: complete")
    return readline, path, start


def _save_history(history, loop: Repl) -> None:
    if history is None:
        return
    readline, path, start = history
    # Only this prompt's own lines are added to the file as it is now: two
    # prompts open at once each wrote the history they had read at their
    # start, so the one closed last dropped the other's questions. Read
    # again and written by readline itself, the file keeps its format
    # (GNU readline's or libedit's) and its length limit.
    mine = [readline.get_history_item(i) for i in range(start + 1, readline.get_current_history_length() + 1)]
    if not mine:
        return  # nothing asked: the file is left as it is
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.clear_history()
        try:
            readline.read_history_file(path)
        except FileNotFoundError:
            pass
        for line in mine:
            if line is not None:
                readline.add_history(line)
        readline.write_history_file(path)
    except OSError as exc:
        loop.error(f"cannot save the history to {path}: {exc.strerror or exc}")
