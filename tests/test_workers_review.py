"""Review of `ask -` in worker processes: the bugs it found, each pinned by a test."""

from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import sys
import time

import pytest

from natoqa import session as sessionmod
from natoqa.cli import cli
from natoqa.errors import CorpusError

from .conftest import SEEDS
from .test_workers import QUESTIONS, batch_bytes

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork")


def test_a_corpus_error_in_a_worker_is_reported_as_in_one_process(runner, monkeypatch):
    real = sessionmod.Session.answer

    def answer(self, question):
        if question == "gone":  # as when a document the cache names has changed since
            raise CorpusError("seeds/x.txt: the document changed while natoqa was answering; run again")
        return real(self, question)

    monkeypatch.setattr(sessionmod.Session, "answer", answer)
    data = b"\n".join([QUESTIONS[0].encode()] * (sessionmod.SERIAL_FIRST + 5) + [b"gone", QUESTIONS[1].encode()])
    for jobs in ("1", "2"):
        result = runner.invoke(cli, ["ask", "-", "--jsonl", "-j", jobs, "--corpus", str(SEEDS)], input=data + b"\n")
        assert result.exit_code == 3, (jobs, result.output[-300:])
        assert "natoqa: error: seeds/x.txt: the document changed while natoqa was answering" in result.output
        assert "internal error" not in result.output


def test_workers_that_cannot_start_leave_the_batch_to_this_process(runner, monkeypatch):
    data = batch_bytes(sessionmod.SERIAL_FIRST + 20, bad=False)
    args = ["ask", "-", "--jsonl", "--corpus", str(SEEDS)]
    one = runner.invoke(cli, [*args, "-j", "1"], input=data)

    def pipe():
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe", pipe)
    many = runner.invoke(cli, [*args, "-j", "2"], input=data)
    assert one.exit_code == 1  # one question of five has no answer
    assert many.exit_code == one.exit_code, many.output[-300:]
    assert many.stdout == one.stdout
    assert len(many.stdout.splitlines()) == sessionmod.SERIAL_FIRST + 20


@pytest.mark.parametrize("count", [3, sessionmod.SERIAL_FIRST + 2])  # few enough to sit in the buffer
def test_each_answer_reaches_a_slow_pipe_before_more_input(count):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as for most users
    proc = subprocess.Popen(
        [sys.executable, "-m", "natoqa", "ask", "-", "--jsonl", "-j", "2", "--corpus", str(SEEDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        proc.stdin.write(batch_bytes(count, bad=False))
        proc.stdin.flush()  # and stdin stays open: more questions may follow
        got, deadline = b"", time.monotonic() + 5
        while got.count(b"\n") < count and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.1)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                got += chunk
        assert got.count(b"\n") == count
        assert [json.loads(line)["question"] for line in got.splitlines()] == [
            QUESTIONS[i % len(QUESTIONS)] for i in range(count)
        ]
    finally:
        proc.communicate(timeout=30)  # closes stdin: the batch ends


def test_jobs_without_fork_answer_in_this_process(runner, monkeypatch):
    data = batch_bytes(sessionmod.SERIAL_FIRST + 20, bad=False)
    args = ["ask", "-", "--jsonl", "--corpus", str(SEEDS)]
    one = runner.invoke(cli, [*args, "-j", "1"], input=data)
    monkeypatch.delattr(os, "fork")
    many = runner.invoke(cli, [*args, "-j", "2"], input=data)
    assert many.exit_code == one.exit_code == 1, many.output[-300:]
    assert many.stdout == one.stdout
