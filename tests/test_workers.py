"""`ask -` in worker processes: the same output, in the same order, as one process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from natoqa import session as sessionmod
from natoqa import store, workers
from natoqa.cli import cli
from natoqa.corpus import load_corpus

from .conftest import SEEDS

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork")

QUESTIONS = [
    "How many troops is the U.S. sending to Poland?",
    "Who is the NATO Secretary General?",
    "zebra quantum marmalade",
    "What does Russia want?",
    "Where did the defense ministers meet?",
]


def batch_bytes(n: int, bad: bool = True) -> bytes:
    """n question lines cycled, with blank and bad lines among them."""
    lines = []
    for i in range(n):
        lines.append(QUESTIONS[i % len(QUESTIONS)].encode())
        if bad and i % 17 == 3:
            lines.append(b"")  # blank: skipped
        if bad and i % 23 == 5:
            lines.append(b"caf\xe9 au lait?")  # not UTF-8
        if bad and i % 29 == 7:
            lines.append(b"bell\x07 ringing?")  # a control character
        if bad and i == 61:
            lines.append(b"x" * (sessionmod.MAX_LINE_BYTES + 10))  # overlong
    return b"\n".join(lines) + b"\n"


def run(args, data: bytes, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "natoqa", "ask", "-", "--corpus", str(SEEDS), *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["--jsonl", "-q"])
def test_workers_write_what_one_process_writes(fmt):
    data = batch_bytes(max(sessionmod.SERIAL_FIRST * 3, 150))  # every kind of bad line, past the serial part
    one = run([fmt, "-j", "1"], data)
    many = run([fmt, "-j", "3"], data)
    assert one.returncode == many.returncode == 2  # bad lines among them
    assert many.stdout == one.stdout
    assert many.stderr == one.stderr
    if fmt == "--jsonl":
        records = [json.loads(line) for line in many.stdout.splitlines()]
        assert sum("error" in r for r in records) >= 5
        assert sum(r.get("answered") is True for r in records) > sessionmod.SERIAL_FIRST


def test_exit_code_1_when_only_some_questions_go_unanswered():
    data = batch_bytes(sessionmod.SERIAL_FIRST * 2, bad=False)
    one, many = run(["--jsonl", "-j", "1"], data), run(["--jsonl", "-j", "2"], data)
    assert one.returncode == many.returncode == 1
    assert many.stdout == one.stdout and many.stderr == b""


def test_a_closed_stdout_ends_the_workers_quietly():
    data = batch_bytes(2_000, bad=False)
    proc = subprocess.run(
        f"{sys.executable} -m natoqa ask - --jsonl -j 2 --corpus {SEEDS} | head -n 1",
        shell=True,
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 1
    assert b"Traceback" not in proc.stderr and proc.stderr == b""


def test_a_failing_worker_is_an_internal_error(runner, monkeypatch):
    # In-process through Click, so the patch reaches the forked workers.
    real = sessionmod.Session.answer

    def answer(self, question):
        if question == "boom":
            raise RuntimeError("the answer exploded")
        return real(self, question)

    monkeypatch.setattr(sessionmod.Session, "answer", answer)
    data = b"\n".join([QUESTIONS[0].encode()] * (sessionmod.SERIAL_FIRST + 5) + [b"boom", QUESTIONS[1].encode()])
    result = runner.invoke(cli, ["ask", "-", "--jsonl", "-j", "2", "--corpus", str(SEEDS)], input=data + b"\n")
    assert result.exit_code == 70
    assert "internal error: WorkerFailed: RuntimeError: the answer exploded" in result.output
    # What came before the failure was written, in order.
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == sessionmod.SERIAL_FIRST + 5
    assert all(r["question"] == QUESTIONS[0] for r in lines)


def test_human_json_and_dense_formats_stay_in_one_process(monkeypatch):
    started = []
    monkeypatch.setattr(workers, "answer_all", lambda *a, **k: started.append(a) or 0)
    s = sessionmod.Session(store.load_index(load_corpus(SEEDS), use_cache=False))
    data = batch_bytes(sessionmod.SERIAL_FIRST * 2, bad=False)
    with contextlib.redirect_stdout(io.StringIO()):
        s.batch(io.BytesIO(data), "json", jobs=4)
        s.batch(io.BytesIO(data), "human", no_color=True, jobs=4)
        assert not started
        s.batch(io.BytesIO(data), "jsonl", jobs=4)
    assert len(started) == 1 and started[0][-1] == 4


def test_available_is_at_least_one():
    assert workers.available() >= 1


def test_ctrl_c_during_a_parallel_batch_exits_130_in_one_line():
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "natoqa", "ask", "-", "--jsonl", "-j", "2", "--corpus", str(SEEDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # More questions than the serial start, and stdin left open: the
    # workers are running and the reader is waiting for more.
    proc.stdin.write(batch_bytes(sessionmod.SERIAL_FIRST + 30, bad=False))
    proc.stdin.flush()
    proc.stdout.read1(1)  # something was answered: the process is well under way
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert err.decode().strip().splitlines()[-1] == "natoqa: error: interrupted"
    assert b"Traceback" not in err


def test_lines_left_is_estimated_from_a_file_only(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_bytes(b"".join(b"question %03d?\n" % i for i in range(100)))  # 14 bytes a line
    with open(path, "rb") as stream:
        start = sessionmod._offset(stream)
        for _ in range(10):
            stream.readline()
        assert start == 0
        assert sessionmod._lines_left(stream, start, 10) == 90
    read, write = os.pipe()
    with os.fdopen(read, "rb") as stream, os.fdopen(write, "wb") as out:
        out.write(b"a?\nb?\n")
        out.flush()
        assert sessionmod._offset(stream) is None
        stream.readline()
        assert sessionmod._lines_left(stream, None, 1) == 0
    assert sessionmod._offset(io.BytesIO(b"a?\n")) is None  # no file descriptor


def test_lines_left_counts_what_follows_not_the_first_lines_length(tmp_path):
    # Ten short lines, then long ones past the look-ahead: the count goes by
    # the lines that follow, not by the first ten.
    path = tmp_path / "questions.txt"
    path.write_bytes(b"q?\n" * 10 + (b"x" * 999 + b"\n") * 100)
    with open(path, "rb") as stream:
        for _ in range(10):
            stream.readline()
        assert 95 <= sessionmod._lines_left(stream, 0, 10) <= 105
        assert stream.readline() == b"x" * 999 + b"\n"  # the stream's position is where it was


def _batch_from(path, index, jobs: int = 2) -> None:
    s = sessionmod.Session(index)
    with open(path, "rb") as stream, contextlib.redirect_stdout(io.StringIO()):
        s.batch(stream, "jsonl", jobs=jobs)


def test_a_long_batch_from_a_file_switches_to_the_arrays_before_forking(tmp_path, monkeypatch):
    from natoqa import answer as answermod

    if answermod._numpy() is None:
        pytest.skip("numpy is not installed")
    monkeypatch.setattr(workers, "answer_all", lambda *a, **k: 0)  # the parent's side is what is checked
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0)
    # The switch is due after 100 more questions: a batch of 50 stays on
    # the dict walk, one of 500 switches before its workers start.
    walked = sessionmod.SERIAL_FIRST * index.n_passages
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", walked + 100 * index.n_passages)
    short, long = tmp_path / "short.txt", tmp_path / "long.txt"
    short.write_bytes(batch_bytes(50, bad=False))
    long.write_bytes(batch_bytes(500, bad=False))
    _batch_from(short, index)
    assert not hasattr(index, "_first_stage_arrays")
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    _batch_from(long, index)
    assert hasattr(index, "_first_stage_arrays")
    assert index._walked >= answermod.ARRAYS_AFTER


def _walks_counted(monkeypatch):
    """(a seed index whose dict walks are counted, the count): the switch to
    the arrays is due, counting questions alone, 100 past the first
    SERIAL_FIRST."""
    from natoqa import answer as answermod

    if answermod._numpy() is None:
        pytest.skip("numpy is not installed")
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    walks = []
    real = index.scores_weighted
    monkeypatch.setattr(index, "scores_weighted", lambda *a: walks.append(1) or real(*a))
    monkeypatch.setattr(answermod, "ARRAYS_MIN", 0)
    monkeypatch.setattr(answermod, "ARRAYS_AFTER", (sessionmod.SERIAL_FIRST + 100) * index.n_passages)
    return index, walks


def test_a_long_batch_from_a_file_in_one_process_switches_after_its_first_questions(tmp_path, monkeypatch):
    # The file's length makes the switch at once.
    index, walks = _walks_counted(monkeypatch)
    path = tmp_path / "long.txt"
    path.write_bytes(batch_bytes(500, bad=False))
    _batch_from(path, index, jobs=1)
    assert 0 < len(walks) <= sessionmod.SERIAL_FIRST  # the dict walk served the first questions only


def test_lines_waiting_counts_what_a_pipe_holds():
    import threading

    read, write = os.pipe()
    with os.fdopen(read, "rb") as stream, os.fdopen(write, "wb") as out:
        # Nothing has arrived yet: it says 0 and does not wait (should it
        # wait, closing the pipe below ends the wait and the test fails).
        found = []
        asking = threading.Thread(target=lambda: found.append(sessionmod._lines_waiting(stream)), daemon=True)
        asking.start()
        asking.join(timeout=5)
        if asking.is_alive():
            out.close()
            asking.join()
            pytest.fail("_lines_waiting waited on an empty pipe")
        assert found == [0]
        out.write(b"".join(b"question %03d?\n" % i for i in range(1_000)))  # 14 kB: the pipe holds it
        out.flush()
        for _ in range(10):
            stream.readline()
        assert 985 <= sessionmod._lines_waiting(stream) <= 990  # at the buffer's line length
    assert sessionmod._lines_waiting(io.BytesIO(b"a?\nb?\n")) == 0  # no file descriptor


def test_a_long_batch_from_a_pipe_switches_after_its_first_questions(monkeypatch):
    index, walks = _walks_counted(monkeypatch)
    data = batch_bytes(500, bad=False)
    assert len(data) < 60_000  # a pipe holds it all
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    with os.fdopen(read, "rb") as stream, contextlib.redirect_stdout(io.StringIO()):
        sessionmod.Session(index).batch(stream, "jsonl", jobs=1)
    assert 0 < len(walks) <= sessionmod.SERIAL_FIRST  # the dict walk served the first questions only


def test_workers_answer_from_the_arrays_the_parent_switched_to_as_the_dict_walk_does(tmp_path, monkeypatch):
    from natoqa import answer as answermod

    if answermod._numpy() is None:
        pytest.skip("numpy is not installed")
    path = tmp_path / "long.txt"
    path.write_bytes(batch_bytes(300, bad=False))

    def batch(jobs: int, arrays: bool):
        index = store.load_index(load_corpus(SEEDS), use_cache=False)
        monkeypatch.setattr(answermod, "ARRAYS_MIN", 0 if arrays else 10**12)
        monkeypatch.setattr(answermod, "ARRAYS_AFTER", (sessionmod.SERIAL_FIRST + 50) * index.n_passages)
        out = io.StringIO()
        with open(path, "rb") as stream, contextlib.redirect_stdout(out):
            code = sessionmod.Session(index).batch(stream, "jsonl", jobs=jobs)
        return code, out.getvalue(), hasattr(index, "_first_stage_arrays")

    walked = batch(1, arrays=False)

    # After the switch, a dict walk (in a worker) would fail the batch.
    def expect(index, questions):
        real_expect(index, questions)

        def walk(*args):
            raise AssertionError("a worker walked the dicts")

        index.scores_weighted = walk

    real_expect = sessionmod.expect
    monkeypatch.setattr(sessionmod, "expect", expect)
    forked = batch(2, arrays=True)
    assert not walked[2] and forked[2]  # the parent switched before the workers forked
    assert forked[:2] == walked[:2]


def test_a_long_batch_knows_the_corpus_stems_before_forking_and_a_short_one_does_not(tmp_path, monkeypatch):
    from natoqa import answer as answermod
    from natoqa import text as textmod

    monkeypatch.setattr(workers, "answer_all", lambda *a, **k: 0)  # the parent's side is what is checked
    index = store.load_index(load_corpus(SEEDS), use_cache=False)  # too small for the arrays: stems all the same
    # Worth it from 100 questions left: a batch of 50 does without.
    monkeypatch.setattr(answermod, "WORDS_PER_QUESTION", index.word_stems[0] // 100 + 1)
    short, long = tmp_path / "short.txt", tmp_path / "long.txt"
    short.write_bytes(batch_bytes(50, bad=False))
    long.write_bytes(batch_bytes(500, bad=False))
    _batch_from(short, index)
    assert not getattr(index, "_stems_known", False) and not textmod._KNOWN_STEMS
    _batch_from(long, index)
    assert index._stems_known
    words, stems = index.word_stems[1].split("\n"), index.word_stems[2].split("\n")
    assert textmod._KNOWN_STEMS == dict(zip(words, stems, strict=True))


def _answers_seeing_the_collector(monkeypatch, cycles: int = 0):
    """Session answers that note, each, whether the cyclic collector is on
    and how many of the cycles made before are still there; each leaves
    `cycles` objects in reference cycles behind."""
    import gc
    import weakref

    class Cycle:
        pass

    states, alive, left = [], [], []
    real = sessionmod.ask

    def ask(*args, **kwargs):
        states.append(gc.isenabled())
        alive.append(sum(ref() is not None for ref in left))
        for _ in range(cycles):
            c = Cycle()
            c.me = c
            left.append(weakref.ref(c))
        return real(*args, **kwargs)

    monkeypatch.setattr(sessionmod, "ask", ask)
    return states, alive


def test_a_batch_turns_the_collector_off_after_its_first_questions_and_on_after(tmp_path, monkeypatch):
    import gc

    states, _ = _answers_seeing_the_collector(monkeypatch)
    path = tmp_path / "q.txt"
    path.write_bytes(batch_bytes(40, bad=False))
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    assert gc.isenabled()
    _batch_from(path, index, jobs=1)
    first = sessionmod.SERIAL_FIRST
    assert states == [True] * first + [False] * (40 - first)
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        _batch_from(path, index, jobs=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_with_the_collector_off_a_batch_still_frees_cycles_once_enough_pile_up(tmp_path, monkeypatch):
    monkeypatch.setattr(sessionmod, "GC_AFTER", 2_000)
    _, alive = _answers_seeing_the_collector(monkeypatch, cycles=100)  # 200 objects a question
    path = tmp_path / "q.txt"
    path.write_bytes(batch_bytes(100, bad=False))
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    _batch_from(path, index, jobs=1)
    # Cycles pile up with the collector off (the first questions' are
    # collected as they go), but never much past GC_AFTER objects' worth:
    # without the bound, the last question would see some 9,000.
    assert max(alive) > 500
    assert max(alive) <= 2_000 // 2 + 100


def test_a_collector_the_caller_turned_off_is_left_to_the_caller(tmp_path, monkeypatch):
    import gc

    monkeypatch.setattr(sessionmod, "GC_AFTER", 2_000)
    _answers_seeing_the_collector(monkeypatch, cycles=100)
    collected = []
    monkeypatch.setattr(sessionmod, "_collect", lambda: collected.append(1))
    path = tmp_path / "q.txt"
    path.write_bytes(batch_bytes(100, bad=False))
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    gc.disable()
    try:
        _batch_from(path, index, jobs=1)
    finally:
        gc.enable()
    assert collected == []
    _batch_from(path, index, jobs=1)  # the batch's own pause: collected at the bound
    assert collected


def test_after_a_batch_the_collector_frees_the_cycles_it_left(tmp_path, monkeypatch):
    import gc

    _, alive = _answers_seeing_the_collector(monkeypatch, cycles=10)
    path = tmp_path / "q.txt"
    path.write_bytes(batch_bytes(40, bad=False))
    index = store.load_index(load_corpus(SEEDS), use_cache=False)
    _batch_from(path, index, jobs=1)  # not the process's last: nothing frozen
    gc.collect()
    s = sessionmod.Session(index)
    s.answer(QUESTIONS[0])  # the wrapped answer counts the cycles still there
    assert max(alive) >= 100 and alive[-1] == 0


def test_many_long_results_come_back_whole_and_in_order():
    # Results long enough (--explain -k 3) that records straddle the
    # parent's reads of a pipe (CHUNK) and fill it while it waits on another.
    data = batch_bytes(400)
    args = ["--jsonl", "--explain", "-k", "3"]
    one = run([*args, "-j", "1"], data)
    many = run([*args, "-j", "2"], data)
    assert one.returncode == many.returncode == 2
    assert len(many.stdout) > 4 * workers.CHUNK
    assert many.stdout == one.stdout
    assert many.stderr == one.stderr


def test_long_questions_and_long_results_never_stall_the_batch():
    # The longest lines (2,000 characters of 4 bytes) among questions with
    # long results (--explain -k 3): a worker's window of questions holds
    # more than its pipe does, and its results fill the other pipe. The
    # parent's writes must wait with its reads: a blocked write would wait
    # on a worker blocked on its own results.
    long_line = "\U0001f642" * sessionmod.MAX_QUESTION_CHARS
    assert len(long_line.encode()) * workers.WINDOW // 2 > 64 * 1024  # more than Linux's pipe holds
    lines = [QUESTIONS[0]] * sessionmod.SERIAL_FIRST + [long_line, long_line, QUESTIONS[0], QUESTIONS[1]] * 60
    data = "\n".join(lines).encode() + b"\n"
    args = ["--jsonl", "--explain", "-k", "3"]
    one = run([*args, "-j", "1"], data)
    many = run([*args, "-j", "2"], data)
    assert one.returncode == many.returncode == 1
    assert many.stdout == one.stdout and many.stderr == b""


def test_a_worker_held_up_gets_little_more_than_its_window(runner, monkeypatch, tmp_path):
    # In-process through Click, so the patch reaches the forked workers. One
    # question takes a second; sent in turn, the worker that has it would
    # get every other question after it. Once it has WINDOW waiting, the
    # other worker takes the rest meanwhile.
    log = tmp_path / "answered"
    real = sessionmod.Session.answer

    def answer(self, question):
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, f"{os.getpid()} {question}\n".encode())
        finally:
            os.close(fd)
        if question == "slow":
            time.sleep(1.0)
            question = QUESTIONS[2]
        return real(self, question)

    monkeypatch.setattr(sessionmod.Session, "answer", answer)
    fast = [QUESTIONS[2].encode()] * 300
    data = b"\n".join([QUESTIONS[0].encode()] * sessionmod.SERIAL_FIRST + [b"slow"] + fast) + b"\n"
    result = runner.invoke(cli, ["ask", "-", "--jsonl", "-j", "2", "--corpus", str(SEEDS)], input=data)
    assert result.exit_code == 1, result.output[-300:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in records] == [QUESTIONS[0]] * sessionmod.SERIAL_FIRST + [QUESTIONS[2]] * 301
    here = str(os.getpid())
    rows = [line.split(" ", 1) for line in log.read_text().splitlines() if not line.startswith(here + " ")]
    assert len(rows) == 301
    slow_pid = next(pid for pid, q in rows if q == "slow")
    held_up = sum(pid == slow_pid for pid, _ in rows)
    assert held_up < 2 * workers.WINDOW  # sent in turn: 151


def test_the_reader_runs_no_more_than_ahead_lines_in_front(monkeypatch):
    monkeypatch.setattr(workers, "AHEAD", 40)
    lines = ((i, f"question {i}?", None, f"question {i}?") for i in range(1, 1_000))
    notes, progress = queue.SimpleQueue(), workers._Progress()
    reader = threading.Thread(target=workers._read, args=(lines, notes, progress), daemon=True)
    reader.start()
    time.sleep(0.2)
    assert notes.qsize() == 41  # past 40 in front, it waits
    progress.written = 30
    progress.room.set()
    time.sleep(0.2)
    assert notes.qsize() == 71
    progress.close()  # the batch is over: it stops, with no note
    reader.join(timeout=1)
    assert not reader.is_alive() and notes.qsize() == 71
