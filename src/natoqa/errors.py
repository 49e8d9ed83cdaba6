"""natoqa's exceptions. The CLI turns each into one line on stderr and an exit code.

Library code raises these and never exits; the mapping to exit codes lives
in one place, `natoqa.cli`, through the `exit_code` attribute.
"""

from __future__ import annotations


class NatoqaError(Exception):
    """Base class: a problem natoqa can explain in one line."""

    exit_code = 2


class UsageError(NatoqaError):
    """Bad input from the user: a question, an option value, a reference."""

    exit_code = 2


class CheckFileError(NatoqaError):
    """A questions file for `natoqa check` that is not valid."""

    exit_code = 2


class CorpusError(NatoqaError):
    """The corpus cannot be loaded: missing, malformed, unreadable."""

    exit_code = 3


class WorkerKilled(NatoqaError):
    """A batch's worker process (`ask - -j N`) was killed by a signal from
    outside natoqa (kill, the out-of-memory killer): not a bug, so not exit
    70. The exit code is the shell's for a process killed by that signal,
    128 + its number (137 for SIGKILL), as 130 and 141 are for SIGINT and
    SIGPIPE."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a CI job cancelled), raised in the main
    thread by the CLI's handler. A KeyboardInterrupt, so that every place
    that ends a batch cleanly on Ctrl-C (what was answered written, a --json
    array closed, workers stopped) does the same for it; the CLI exits 143,
    128 + SIGTERM's number, as the shell reports a process it ended."""
