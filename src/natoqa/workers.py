"""Answering a batch of questions in worker processes, in input order.

`natoqa ask -` reads questions from stdin. Answering is pure Python and
holds the GIL, so threads cannot share the work; forked processes can, and
they share the loaded index's pages with the parent. The parent keeps
everything that must happen once and in order: reading and checking each
line, writing each result and each error, the exit code. A worker only
answers: it receives question lines on a pipe and sends back, per
question, the text the serial path would have written.

    parent, reader thread:  stdin -> line checks -> worker k's pipe  (round robin)
                            and, per line, a note of where its result is
    worker k:               question -> Session.answer -> result text
    parent, main thread:    the notes in order -> the result text from
                            worker k's pipe (or the line's error) -> stdout

Each worker gets every jobs-th question and answers them in order, so the
next result a worker sends is the one the main thread waits for. A worker
writes its results out when it has no complete question left to read,
never later: a question on a slow pipe is answered at once, and a worker
never waits on a result it has not sent.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
import threading
import traceback

from natoqa.errors import NatoqaError, UsageError

# The largest read from a pipe, and the most result text a worker holds
# before writing it out.
CHUNK = 64 * 1024


def available() -> int:
    """How many processes can answer at once here (the CPUs this process may use)."""
    if not hasattr(os, "fork"):
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class WorkerFailed(Exception):
    """A worker died or raised: a bug (the CLI reports an internal error)."""


class Unavailable(Exception):
    """No worker could be started (no pipe, no process): answer in this one."""


class _Relayed(NatoqaError):
    """A NatoqaError a worker met (a document changed under the cache, say),
    raised again in the parent with its message and exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Worker:
    def __init__(self, session, render, inherited: list[int]):
        question_r, self.question_w = os.pipe()
        try:
            self.result_r, result_w = os.pipe()
        except OSError:
            os.close(question_r)
            os.close(self.question_w)
            raise
        try:
            self.pid = os.fork()
        except OSError:
            for fd in (question_r, self.question_w, self.result_r, result_w):
                os.close(fd)
            raise
        if self.pid == 0:  # the worker
            status = 1
            try:
                os.close(self.question_w)
                os.close(self.result_r)
                # The parent's ends of earlier workers' pipes: held open
                # here, they would keep those workers from seeing the end.
                for fd in inherited:
                    os.close(fd)
                # Ctrl-C reaches the whole process group: the parent decides.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _serve(session, render, question_r, result_w)
                status = 0
            except BaseException:  # noqa: BLE001 - a worker never unwinds into the parent's code
                pass
            finally:
                os._exit(status)
        os.close(question_r)
        os.close(result_w)
        self._buffer = b""
        self._pos = 0

    def send(self, line: str) -> None:
        _write_all(self.question_w, line.encode("utf-8", "surrogatepass") + b"\n")

    def close_questions(self) -> None:
        if self.question_w >= 0:
            os.close(self.question_w)
            self.question_w = -1

    def receive(self) -> tuple[str, str]:
        """The next record: ("R", text) answered, ("N", text) not answered,
        ("E", message) a question refused."""
        header = self._read_until_newline()
        kind, size = header[:1].decode(), int(header[1:])
        return kind, self._read_exactly(size).decode("utf-8", "surrogatepass")

    def _fill(self) -> None:
        try:
            chunk = os.read(self.result_r, CHUNK)
        except OSError as exc:
            raise WorkerFailed(f"cannot read a worker's answers: {exc.strerror or exc}") from None
        if not chunk:
            raise WorkerFailed("a worker process ended before answering every question")
        self._buffer = self._buffer[self._pos :] + chunk
        self._pos = 0

    def _read_until_newline(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n", self._pos)
            if end >= 0:
                out = self._buffer[self._pos : end]
                self._pos = end + 1
                return out
            self._fill()

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) - self._pos < size:
            self._fill()
        out = self._buffer[self._pos : self._pos + size]
        self._pos += size
        return out

    def stop(self, kill: bool) -> None:
        """Reap the worker; with kill, end it first (the batch was cut short).
        Its question pipe is the reader thread's to close."""
        if kill:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.result_r)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _serve(session, render, question_r: int, result_w: int) -> None:
    """A worker's loop: answer each question line until the pipe ends."""
    buffer, pos = b"", 0
    out: list[bytes] = []
    held = 0
    while True:
        end = buffer.find(b"\n", pos)
        if end < 0:
            # Nothing left to answer: send what is done before waiting.
            if out:
                _write_all(result_w, b"".join(out))
                out, held = [], 0
            chunk = os.read(question_r, CHUNK)
            if not chunk:
                return
            buffer, pos = buffer[pos:] + chunk, 0
            continue
        line = buffer[pos:end].decode("utf-8", "surrogatepass")
        pos = end + 1
        try:
            result = session.answer(line)
        except UsageError as exc:
            kind, text = b"E", str(exc)
        except NatoqaError as exc:  # the batch ends, as in one process
            kind, text = b"F", f"{exc.exit_code} {exc}"
        except Exception:  # a bug: the parent reports it
            kind, text = b"X", traceback.format_exc()
        else:
            kind, text = (b"R" if result.answered else b"N"), render(result)
        data = text.encode("utf-8", "surrogatepass")
        out.append(kind + str(len(data)).encode() + b"\n" + data)
        held += len(data)
        if held >= CHUNK or kind in (b"X", b"F"):
            _write_all(result_w, b"".join(out))
            out, held = [], 0


def answer_all(session, lines, writer, render, jobs: int) -> int:
    """Answer each question of `lines` ((number, line or None, error or None,
    shown text) per input line) with `jobs` workers; write every result
    and error through `writer` in input order. Returns the exit code."""
    from natoqa.session import EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE

    sys.stdout.flush()
    sys.stderr.flush()
    # Every object made so far (the index, its memos) out of the collector's
    # reach: a forked worker shares them with the parent page by page, and a
    # collection walking them would write to every page and copy it.
    gc.freeze()
    workers: list[_Worker] = []
    done = False
    try:
        for _ in range(jobs):
            inherited = [fd for w in workers for fd in (w.question_w, w.result_r)]
            try:
                workers.append(_Worker(session, render, inherited))
            except OSError as exc:
                if workers:
                    break  # fewer workers than asked for: still a parallel batch
                raise Unavailable(str(exc)) from None
        notes: queue.SimpleQueue = queue.SimpleQueue()
        global _reader
        reader = _reader = threading.Thread(target=_dispatch, args=(lines, workers, notes), daemon=True)
        reader.start()
        code = EXIT_OK
        while True:
            try:
                note = notes.get_nowait()
            except queue.Empty:
                # Everything read so far is answered and written: show it
                # before waiting on stdin (a person, a co-process).
                writer.out.flush()
                note = notes.get()
            what = note[0]
            if what == "end":
                break
            if what == "fail":
                raise note[1]
            if what == "error":
                _, number, message, shown = note
                writer.error(number, message, shown)
                code = EXIT_USAGE
                continue
            _, number, shown, worker = note
            kind, text = workers[worker].receive()
            if kind == "X":
                raise WorkerFailed(text.strip().splitlines()[-1] if text.strip() else "a worker failed")
            if kind == "F":
                code_text, _, message = text.partition(" ")
                raise _Relayed(message, int(code_text))
            if kind == "E":
                writer.error(number, text, shown)
                code = EXIT_USAGE
                continue
            writer.write_text(text)
            if kind == "N" and code == EXIT_OK:
                code = EXIT_NO_ANSWER
        done = True
        return code
    finally:
        for w in workers:
            w.stop(kill=not done)
        if not done and _reader is not None:
            # Blocked writing to a worker, the reader ends now that the
            # workers are gone; blocked reading stdin, it stays (see reading).
            _reader.join(timeout=0.1)


_reader: threading.Thread | None = None


def reading() -> bool:
    """Whether a batch's reader thread is still alive (blocked reading
    stdin after the batch was cut short). The interpreter's shutdown would
    then abort: it cannot take stdin's lock from that thread."""
    return _reader is not None and _reader.is_alive()


def _dispatch(lines, workers: list[_Worker], notes: queue.SimpleQueue) -> None:
    """The reader thread: each question to the next worker, in turn."""
    turn = 0
    try:
        for number, line, error, shown in lines:
            if error is not None:
                notes.put(("error", number, error, shown))
                continue
            try:
                workers[turn].send(line)
            except OSError:
                # Its pipe is closed: the worker died (the main thread, not
                # stdout, must not take this for a closed pipe).
                raise WorkerFailed("a worker process ended before answering every question") from None
            notes.put(("answer", number, shown, turn))
            turn = (turn + 1) % len(workers)
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        notes.put(("fail", exc))
        return
    finally:
        for w in workers:
            w.close_questions()
    notes.put(("end",))
