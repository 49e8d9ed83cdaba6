"""SIGTERM (kill, timeout, a cancelled CI job) ends natoqa as Ctrl-C does:
what a batch answered is written, a --json array closed, one line on
stderr, exit 143 (128 + SIGTERM), never a traceback or a cut answer."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from natoqa import session as sessionmod

from .conftest import SEEDS

QUESTIONS = [
    "How many troops is the U.S. sending to Poland?",
    "Who is the NATO Secretary General?",
    "Where did the defence ministers meet?",
]


def _questions(n: int) -> bytes:
    return "".join(f"{QUESTIONS[i % len(QUESTIONS)]}\n" for i in range(n)).encode()


def _terminate_after(args: list[str], n: int, count_answers) -> tuple[int, str, str]:
    """Send n questions on a stdin left open, wait until all n are answered
    on stdout (natoqa writes what it has before it waits for more), then
    SIGTERM the process: (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "natoqa", "ask", "-", *args, "--corpus", str(SEEDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(_questions(n))
        proc.stdin.flush()
        out = b""
        deadline = time.monotonic() + 30
        while count_answers(out) < n and time.monotonic() < deadline:
            out += proc.stdout.read1(65536)
        assert count_answers(out) == n, out[-500:]
        time.sleep(0.1)  # waiting on stdin again
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, (out + rest).decode(), err.decode()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_during_a_jsonl_batch_keeps_the_answers_and_exits_143(jobs):
    # -j 2 past the serial start runs workers: the parent stops them, and
    # their own SIGTERM is not mistaken for a worker killed from outside.
    n = sessionmod.SERIAL_FIRST + 10
    code, out, err = _terminate_after(["--jsonl", "-j", jobs], n, lambda b: b.count(b"\n"))
    assert (code, err) == (143, "natoqa: error: terminated\n")
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == n and all(a["answered"] for a in answers)


def _idle(proc, pipe) -> bool:
    """Whether natoqa has read all of stdin and sleeps, waiting for more."""
    with open(f"/proc/{proc.pid}/stat") as f:
        state = f.read().rpartition(")")[2].split()[0]
    unread = struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0\0\0\0"))[0]
    return state == "S" and unread == 0


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/stat"), reason="needs Linux's /proc")
def test_sigterm_during_a_json_batch_closes_the_array():
    # Before, the process died with the array open: `timeout 60 natoqa ask -
    # --json` left a file no JSON reader could load. --json writes the
    # array at the end, so the questions are known answered when natoqa has
    # read them all and sleeps on stdin for a while.
    proc = subprocess.Popen(
        [sys.executable, "-m", "natoqa", "ask", "-", "--json", "--corpus", str(SEEDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(_questions(3))
        proc.stdin.flush()
        idle_since = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not _idle(proc, proc.stdin):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 0.3:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, err.decode()) == (143, "natoqa: error: terminated\n")
    assert [a["question"] for a in json.loads(out)] == QUESTIONS
