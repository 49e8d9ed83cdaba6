"""Review of `ask -` in worker processes: the bugs it found, each pinned by a test."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import select
import subprocess
import sys
import threading
import time

import pytest

from natoqa import session as sessionmod
from natoqa import store, workers
from natoqa.cli import cli
from natoqa.corpus import load_corpus
from natoqa.errors import CorpusError, UsageError

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


# Review of the batch shared by how many each worker has waiting (session 15).


@pytest.fixture(scope="module")
def seed_index():
    return store.load_index(load_corpus(SEEDS), use_cache=False)


class _FailingStdin(io.RawIOBase):
    """n question lines, then an I/O error."""

    def __init__(self, n: int):
        self.data = b"".join(QUESTIONS[i % len(QUESTIONS)].encode() + b"\n" for i in range(n))
        self.pos = 0

    def readable(self):
        return True

    def readinto(self, b):
        if self.pos >= len(self.data):
            raise OSError(errno.EIO, "Input/output error")
        k = min(len(b), len(self.data) - self.pos, 512)
        b[:k] = self.data[self.pos : self.pos + k]
        self.pos += k
        return k


def _batch(index, stream, jobs: int):
    """(what a batch wrote, the error it raised or None)."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            sessionmod.Session(index).batch(stream, "jsonl", jobs=jobs)
        except Exception as exc:  # noqa: BLE001 - the test compares them
            return out.getvalue(), exc
    return out.getvalue(), None


def test_a_read_error_after_many_lines_still_writes_their_answers(seed_index):
    one, one_error = _batch(seed_index, io.BufferedReader(_FailingStdin(300)), 1)
    many, many_error = _batch(seed_index, io.BufferedReader(_FailingStdin(300)), 2)
    assert isinstance(many_error, UsageError) and str(many_error) == str(one_error)
    assert "Input/output error" in str(many_error)
    assert len(many.splitlines()) == 300
    assert many == one


def test_a_worker_that_dies_leaves_the_answers_before_it_written(seed_index, monkeypatch):
    real = sessionmod.Session.answer

    def answer(self, question):
        if question == "slow":
            time.sleep(0.5)  # the other worker dies meanwhile
            question = QUESTIONS[0]
        if question == "die":
            os._exit(1)
        return real(self, question)

    monkeypatch.setattr(sessionmod.Session, "answer", answer)
    lines = [QUESTIONS[0]] * sessionmod.SERIAL_FIRST + ["slow", "die"] + [QUESTIONS[1]] * 20
    out, error = _batch(seed_index, io.BytesIO(("\n".join(lines) + "\n").encode()), 2)
    assert isinstance(error, workers.WorkerFailed)
    assert len(out.splitlines()) == sessionmod.SERIAL_FIRST + 1  # all before "die"


def test_a_question_read_while_the_parent_waits_goes_to_an_idle_worker(seed_index, monkeypatch, tmp_path):
    # The first worker is stuck on a slow question when more arrive on the
    # pipe: the other worker must start on them at once, not once the slow
    # one is answered.
    log = tmp_path / "started"
    real = sessionmod.Session.answer
    parent = os.getpid()

    def answer(self, question):
        if question == "slow":
            time.sleep(1.5)
            with open(log, "a") as f:
                f.write(f"slow {time.monotonic()}\n")
            question = QUESTIONS[0]
        elif os.getpid() != parent:
            with open(log, "a") as f:
                f.write(f"other {time.monotonic()}\n")
        return real(self, question)

    monkeypatch.setattr(sessionmod.Session, "answer", answer)
    first = "\n".join([QUESTIONS[0]] * sessionmod.SERIAL_FIRST + ["slow"]) + "\n"
    later = "\n".join([QUESTIONS[1]] * 5) + "\n"
    feeder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, time; sys.stdout.write({first!r}); sys.stdout.flush(); time.sleep(0.3); sys.stdout.write({later!r})",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        out, error = _batch(seed_index, feeder.stdout, 2)
    finally:
        feeder.wait(timeout=30)
    assert error is None and len(out.splitlines()) == sessionmod.SERIAL_FIRST + 6
    rows = [line.split() for line in log.read_text().splitlines()]
    slow_done = next(float(t) for who, t in rows if who == "slow")
    assert min(float(t) for who, t in rows if who == "other") < slow_done  # sent in turn: after it


def test_a_death_found_by_a_failed_write_still_writes_what_the_worker_sent():
    # Worker 2 answers "flushdie", writes its result, and dies while the
    # parent is busy writing "a0". The parent then learns of the death by a
    # failed write (it gives worker 2 "a3") before reading that result: the
    # result must still be written, and the death raised only at "a3".
    class Result:
        answered = True

        def __init__(self, question):
            self.question = question

    class Stub:
        def answer(self, question):
            if question == "flushdie":
                threading.Timer(0.2, os._exit, (1,)).start()
            return Result(question)

    class Writer:
        out = io.StringIO()

        def write_text(self, text):
            if text.startswith("a0"):
                time.sleep(1.0)  # the parent busy writing
            self.out.write(text)

        def error(self, *args):
            self.out.write("ERR\n")

    def lines():
        yield (1, "a0", None, "a0")
        yield (2, "flushdie", None, "flushdie")
        time.sleep(0.5)
        yield (3, "a2", None, "a2")
        yield (4, "a3", None, "a3")

    writer = Writer()
    with pytest.raises(workers.WorkerFailed):
        workers.answer_all(Stub(), lines(), writer, lambda r: r.question + "\n", 2)
    assert writer.out.getvalue().split() == ["a0", "flushdie", "a2"]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _gone(pid: int) -> bool:
    """Whether a process (not ours to reap) has ended: gone, or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"), reason="needs Linux's /proc"
)
@pytest.mark.parametrize("signum", ["SIGKILL", "SIGTERM"])
def test_a_worker_killed_from_outside_is_said_so_not_called_a_bug(signum):
    # kill -9 of a worker (by hand, by the out-of-memory killer) is not a
    # bug in natoqa: it was reported as one, exit 70.
    import signal

    signum = getattr(signal, signum)
    proc = subprocess.Popen(
        [sys.executable, "-m", "natoqa", "ask", "-", "--jsonl", "-j", "2", "--corpus", str(SEEDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = sessionmod.SERIAL_FIRST + 20
        proc.stdin.write(batch_bytes(first, bad=False))
        proc.stdin.flush()
        for _ in range(first):  # all answered: the workers wait for more
            assert proc.stdout.readline()
        kids = _children(proc.pid)
        assert len(kids) == 2
        os.kill(kids[0], signum)
        deadline = time.monotonic() + 30
        while not _gone(kids[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.stdin.write(batch_bytes(40, bad=False))  # half of them for the dead worker
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signum, err.decode()
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0], lines
    assert f"a worker process was killed by {signal.Signals(signum).name}" in lines[0]
    assert "from outside natoqa" in lines[0] and "the batch stopped at stdin line" in lines[0]
    assert all(json.loads(line)["answered"] in (True, False) for line in out.splitlines())
    assert _gone(kids[1])  # the other worker did not outlive the batch
