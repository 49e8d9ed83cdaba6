"""The `natoqa` command's entry point.

Ctrl-C while Python is still importing natoqa's modules (click, rich: the
first tens of milliseconds) would print a KeyboardInterrupt traceback, as
natoqa.cli's error handling is not running yet. Until it is, an interrupt
ends the process here with the CLI's own line and exit code 130. (An
interrupt before this module runs, while Python itself starts, can still
print Python's own message: nothing of natoqa's is running yet.)
"""

# _signal is the C module under `signal`: importing `signal` itself loads
# enum and types, milliseconds in which an interrupt would still print a
# traceback.
import _signal
import os
import sys

EXIT_INTERRUPTED = 130


def _interrupted(signum, frame):
    try:
        sys.stderr.write("natoqa: error: interrupted\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    os._exit(EXIT_INTERRUPTED)


def main():
    try:
        previous = _signal.signal(_signal.SIGINT, _interrupted)
    except (ValueError, OSError):  # not the main thread, or no signals here
        previous = None
    from natoqa.cli import main as cli_main

    if previous is not None:
        _signal.signal(_signal.SIGINT, previous)
    return cli_main()
