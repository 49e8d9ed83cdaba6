"""Answering a batch of questions in worker processes, in input order.

`natoqa ask -` reads questions from stdin. Answering is pure Python and
holds the GIL, so threads cannot share the work; forked processes can, and
they share the loaded index's pages with the parent. The parent keeps
everything that must happen once and in order: reading and checking each
line, writing each result and each error, the exit code. A worker only
answers: it receives question lines on a pipe and sends back, per
question, the text the serial path would have written.

    parent, reader thread:  stdin -> line checks -> notes, in input order
    parent, main thread:    notes -> each question to a worker's pipe;
                            every worker's results as they come; the
                            results (or the lines' errors) in input order
                            -> stdout
    worker k:               question -> Session.answer -> result text

A worker answers its questions in the order it got them, so its results
come back in that order; the main thread reads whichever worker has some
and keeps them until their turn. Questions go to the workers in turn, but
no worker has more than WINDOW waiting: a full worker's turn goes to the
worker with the fewest, once that one is down to half a window. So a
worker on a slower core, or with costlier questions, gets fewer, where a
fixed share made the batch as slow as its slowest share. The main thread
alone writes to the workers' pipes, and never blocks on one: a write that
would block waits with the reads, so a worker whose results fill its own
pipe is always read. The reader wakes the main thread's wait when it has a
new line, so a question read meanwhile goes to an idle worker at once. A
worker writes its results out when it has no complete question left to
read, or has answered FLUSH_AFTER since it last wrote: a question on a
slow pipe is answered at once, and the parent learns soon enough that a
worker can take more.
"""

from __future__ import annotations

import collections
import gc
import os
import queue
import select
import signal
import sys
import threading
import traceback

from natoqa.errors import NatoqaError, UsageError, WorkerKilled

# The largest read from a pipe, and the most result text a worker holds
# before writing it out.
CHUNK = 64 * 1024
# The most questions a worker has waiting (sent, their results not yet
# read back), and how many it answers before it writes their results out
# (sooner when it has none left). The window keeps a worker busy while the
# parent's threads take turns to refill it; it is small enough that, at the
# end, no worker is left with a long queue while the others are done.
WINDOW = 32
FLUSH_AFTER = 8
# The most lines the reader thread runs ahead of what the main thread has
# written: a long file is not read whole into memory (what is held is
# these lines, and the results of at most WINDOW a worker), while a batch
# never waits on the reader.
AHEAD = 1024


def available() -> int:
    """How many processes can answer at once here (the CPUs this process may use)."""
    if not hasattr(os, "fork"):
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class WorkerFailed(Exception):
    """A worker died or raised: a bug (the CLI reports an internal error).
    A worker killed from outside is WorkerKilled instead (see _Worker.death)."""


# The signals a process gets from its own faults: a worker ended by one of
# these crashed (a bug, or the machine's), where any other was sent to it.
_FAULTS = {
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGSYS", "SIGTRAP")
    if hasattr(signal, name)
}


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
                # SIGTERM ends a worker at once (the parent's stop, or a kill
                # from outside that death() reports), not through the
                # parent's handler, which would unwind it as an exit of 1.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
        self.ready: collections.deque = collections.deque()
        self._out: list[bytes] = []  # question lines not yet written
        self.ended = False  # its results pipe has ended: it died
        self.status: int | None = None  # its wait status, once reaped
        os.set_blocking(self.question_w, False)

    def add(self, line: str) -> None:
        self._out.append(line.encode("utf-8", "surrogatepass") + b"\n")

    def send_some(self) -> None:
        """Write what is queued for the worker, as much as its pipe takes
        without blocking."""
        if not self._out:
            return
        data = b"".join(self._out)
        try:
            sent = os.write(self.question_w, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Its pipe is closed: the worker died. What it wrote before is
            # still to be read from its results pipe (it has questions
            # waiting, so that pipe is polled); the end of that pipe then
            # marks it ended, and its death is reported when its next
            # result is due.
            self._out = []
            return
        self._out = [data[sent:]] if sent < len(data) else []

    def close_questions(self) -> None:
        if self.question_w >= 0:
            os.close(self.question_w)
            self.question_w = -1

    def pump(self) -> int:
        """Read what the worker has written (one read: the pipe is readable)
        and keep every whole record in `ready`: ("R", text) answered, ("N",
        text) not answered, ("E", message) a question refused, ("F", ...) and
        ("X", ...) failures. Returns how many records were whole. At the
        end of the pipe, `ended` is set: the worker died, and that is
        reported when its next result is due (what came before it is
        written first, as in one process)."""
        try:
            chunk = os.read(self.result_r, CHUNK)
        except OSError as exc:
            raise WorkerFailed(f"cannot read a worker's answers: {exc.strerror or exc}") from None
        if not chunk:
            self.ended = True
            return 0
        buffer = self._buffer[self._pos :] + chunk if self._pos < len(self._buffer) else chunk
        pos, count, size_of = 0, 0, len(buffer)
        ready = self.ready
        while True:
            end = buffer.find(b"\n", pos)
            if end < 0:
                break
            stop = end + 1 + int(buffer[pos + 1 : end])
            if stop > size_of:
                break
            ready.append((buffer[pos : pos + 1].decode(), buffer[end + 1 : stop].decode("utf-8", "surrogatepass")))
            pos = stop
            count += 1
        self._buffer, self._pos = buffer, pos
        return count

    def death(self, number: int) -> Exception:
        """What to raise for an ended worker that still owed the answer to
        stdin line `number`: reaped, its wait status tells whether a signal
        from outside killed it (kill -9, the out-of-memory killer), which is
        not a bug in natoqa and is said so, or it crashed or exited."""
        self._reap()
        if self.status is not None and os.WIFSIGNALED(self.status):
            signum = os.WTERMSIG(self.status)
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = f"signal {signum}"
            if signum not in _FAULTS:
                return WorkerKilled(
                    f"a worker process was killed by {name} (signal {signum}) from outside natoqa (kill, or the"
                    f" out-of-memory killer): the batch stopped at stdin line {number}",
                    signum,
                )
            return WorkerFailed(f"a worker process crashed ({name}) before answering every question")
        return WorkerFailed("a worker process ended before answering every question")

    def _reap(self) -> None:
        if self.status is None:
            try:
                self.status = os.waitpid(self.pid, 0)[1]
            except ChildProcessError:
                self.status = 0

    def stop(self, kill: bool) -> None:
        """Reap the worker; with kill, end it first (the batch was cut short).
        Its question pipe must be closed first (close_questions). One reaped
        already (death) is not signalled: its pid may be another process's now."""
        if kill and self.status is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self._reap()
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
            kind, text = (b"R" if result.answered else b"N"), render(result)
        except UsageError as exc:
            kind, text = b"E", str(exc)
        except NatoqaError as exc:  # the batch ends, as in one process
            kind, text = b"F", f"{exc.exit_code} {exc}"
        except Exception:  # a bug (in answering or in rendering): the parent reports it
            kind, text = b"X", traceback.format_exc()
        data = text.encode("utf-8", "surrogatepass")
        out.append(kind + str(len(data)).encode() + b"\n" + data)
        held += len(data)
        if held >= CHUNK or len(out) >= FLUSH_AFTER or kind in (b"X", b"F"):
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
    progress = None
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
        progress = _Progress()
        global _reader
        reader = _reader = threading.Thread(target=_read, args=(lines, notes, progress), daemon=True)
        reader.start()
        # pending holds, in input order, a list [worker or -1, number, shown]
        # for each question and the reader's note (a tuple) for an error
        # line or for the reader's failure.
        code = EXIT_OK
        n = len(workers)
        waiting = [0] * n  # per worker: questions sent, their results not yet read
        pending: collections.deque = collections.deque()  # lines not yet written, in order
        unsent: collections.deque = collections.deque()  # questions not yet given to a worker
        turn, ended, written = 0, False, 0
        while True:
            while not ended:
                try:
                    note = notes.get_nowait()
                except queue.Empty:
                    if pending:
                        break
                    # Everything read so far is answered and written: show it
                    # before waiting on stdin (a person, a co-process).
                    writer.out.flush()
                    note = notes.get()
                what = note[0]
                if what == "question":
                    _, number, line, shown = note
                    item = [-1, number, shown]
                    pending.append(item)
                    unsent.append((item, line))
                elif what == "end":
                    ended = True
                else:  # an error line; the reader's failure, after what came before it
                    pending.append(note)
                    ended = what == "fail"
            while unsent:
                k = turn
                if waiting[k] >= WINDOW:
                    # Its turn passes only to a worker running short, so
                    # that, with no worker behind, the turns stay as they
                    # were (a worker meets the same questions again, as
                    # its memos prefer).
                    k = waiting.index(min(waiting))
                    if waiting[k] > WINDOW // 2:
                        break
                item, line = unsent.popleft()
                item[0] = k
                waiting[k] += 1
                workers[k].add(line)
                turn = (k + 1) % n
            for w in workers:
                w.send_some()
            while pending:
                head = pending[0]
                if head.__class__ is tuple:
                    if head[0] == "fail":
                        raise head[1]
                    pending.popleft()
                    written += 1
                    _, number, message, shown = head
                    writer.error(number, message, shown)
                    code = EXIT_USAGE
                    continue
                k, number, shown = head
                if k < 0 or not workers[k].ready:
                    if k >= 0 and workers[k].ended:
                        raise workers[k].death(number)
                    break
                pending.popleft()
                written += 1
                kind, text = workers[k].ready.popleft()
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
            progress.written = written
            progress.room.set()  # a reader waiting for room looks again
            if not pending:
                if ended:
                    break
                continue
            _wait(workers, waiting, notes, progress)
        done = True
        return code
    finally:
        if progress is not None:
            # A reader waiting for room stops; one blocked on stdin stops
            # after its next line (see reading).
            progress.close()
        # Every question pipe closed first (the end of its questions: a
        # worker then ends), so that a Ctrl-C during one worker's reaping
        # leaves none of the others waiting for more.
        for w in workers:
            w.close_questions()
        for w in workers:
            w.stop(kill=not done)


_reader: threading.Thread | None = None


def reading() -> bool:
    """Whether a batch's reader thread is still alive (blocked reading
    stdin after the batch was cut short). The interpreter's shutdown would
    then abort: it cannot take stdin's lock from that thread."""
    return _reader is not None and _reader.is_alive()


def _wait(workers: list[_Worker], waiting: list[int], notes: queue.SimpleQueue, progress: _Progress) -> None:
    """Wait until a worker with questions waiting has written, a pipe with
    questions queued has room, or the reader has a new note (so that a
    question read meanwhile goes to an idle worker at once); then read what
    every such worker has, and write what fits. A worker with no question
    waiting has nothing to send. The main thread waits only when the next
    line is a question a worker has, or one not yet given out because every
    worker has more than half a window waiting: either way some worker
    will write, so the wait ends."""
    poller = select.poll()  # not select.select: it takes no descriptor past 1,023
    for w, count in zip(workers, waiting, strict=True):
        if count > 0 and not w.ended:
            poller.register(w.result_r, select.POLLIN)
        if w._out:
            poller.register(w.question_w, select.POLLOUT)
    poller.register(progress.wake_r, select.POLLIN)
    # The reader writes to the wake pipe only while `polling` is set: set
    # before the queue is looked at, a note put after that look wakes us.
    progress.polling = True
    try:
        if notes.qsize():
            return
        ready = {fd for fd, _ in poller.poll()}
    finally:
        progress.polling = False
    if progress.wake_r in ready:
        os.read(progress.wake_r, CHUNK)
    # An ended worker's pipe polls as hung up: reading or writing it tells.
    for k, w in enumerate(workers):
        if w.result_r in ready:
            waiting[k] -= w.pump()
        if w.question_w in ready:
            w.send_some()


class _Progress:
    """What the reader thread and the main thread tell each other: how far
    the main thread has written (lines), so that the reader waits when it is
    AHEAD lines in front; and a pipe the reader wakes the main thread's
    poll with when it has a new note."""

    def __init__(self):
        self.written = 0  # set by the main thread only
        self.closed = False  # the batch is over: the reader stops
        self.room = threading.Event()
        self.polling = False  # the main thread is (about to be) in poll
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        # A reader left blocked on stdin may wake after the batch: the lock
        # keeps it from writing to the pipe once close() has closed it.
        self.lock = threading.Lock()

    def wait(self, read: int) -> None:
        """Hold the reader (`read` lines so far) until the main thread has
        caught up half way. The main thread sets `written` before the event,
        and the reader clears the event before it looks at `written` and
        `closed` again, so no wake-up is missed."""
        while read - self.written > AHEAD // 2:
            self.room.clear()
            if self.closed:
                raise _Closed
            if read - self.written > AHEAD // 2:
                self.room.wait()

    def wake(self) -> None:
        """Tell a main thread in poll that a note is waiting (one byte a
        poll; a full pipe already says so)."""
        if self.polling:
            with self.lock:
                if self.polling and not self.closed:
                    self.polling = False
                    try:
                        os.write(self.wake_w, b"!")
                    except OSError:
                        pass  # full: the main thread is woken already

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.polling = False
            os.close(self.wake_r)
            os.close(self.wake_w)
        self.room.set()


class _Closed(Exception):
    """The batch ended while the reader waited (see _Progress.close)."""


def _read(lines, notes: queue.SimpleQueue, progress: _Progress) -> None:
    """The reader thread: each line, checked, as a note for the main thread."""
    read = 0
    try:
        for number, line, error, shown in lines:
            if error is not None:
                notes.put(("error", number, error, shown))
            else:
                notes.put(("question", number, line, shown))
            if progress.closed:
                return  # the batch was cut short: leave the rest of stdin unread
            progress.wake()
            read += 1
            if read - progress.written > AHEAD:
                progress.wait(read)
    except _Closed:
        return  # no one reads the notes now
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        notes.put(("fail", exc))
        progress.wake()
        return
    notes.put(("end",))
    progress.wake()
