"""Following a citation: from `PATH:LINE[:COL]` back to a document and line."""

from __future__ import annotations

import os
import re

from natoqa.corpus import Corpus, Document, load_corpus, read_document
from natoqa.errors import CorpusError, UsageError

# What follows PATH and a colon: LINE, LINE:COL (with grep's trailing colon
# allowed), or FIRST-LAST as natoqa prints a passage's lines (`show`'s
# header, --explain's runner-up).
_SPEC = re.compile(r"(?P<line>[0-9]+)(?:-(?P<last>[0-9]+)|(?::(?P<col>[0-9]+))?:?)")

# Past any line a document can have (documents are at most 50 MB), and
# short of what int() refuses to parse (4,300 digits).
_MAX_DIGITS = 12


def parse_reference(reference: str) -> list[tuple[str, re.Match]]:
    """Each way to read a reference as PATH and a line spec, the longest PATH
    first. A file name may hold colons, so `notes:2024:3` is line 3 of
    `notes:2024` as well as line 2024, column 3 of `notes`; the reading whose
    PATH names something is the one meant (see find_reference)."""
    text = reference.strip()
    readings = [
        (text[:at], spec)
        for at in range(len(text) - 1, 0, -1)
        if text[at] == ":" and (spec := _SPEC.fullmatch(text, at + 1))
    ]
    if not readings:
        raise UsageError(f"{reference!r} is not a reference; expected PATH:LINE, PATH:LINE:COL or PATH:FIRST-LAST")
    return readings


def _numbers(reference: str, spec: re.Match) -> tuple[int, int | None, int]:
    """(line, column or None, last line) of a line spec; the last line is the
    line itself but for a range."""
    if any(len((n or "0").lstrip("0")) > _MAX_DIGITS for n in spec.group("line", "col", "last")):
        raise UsageError(f"{reference!r}: line or column number too large")
    line = int(spec["line"])
    last = int(spec["last"]) if spec["last"] else line
    if last < line:
        raise UsageError(f"{reference!r}: the range ends before it starts")
    return line, int(spec["col"]) if spec["col"] else None, last


def find_reference(reference: str, corpus_location: str | None) -> tuple[Document, int, int]:
    """The document a reference names, its line and last line, checked to exist.

    The path is looked up among the corpus documents (by the path natoqa
    prints, by the file itself, or by document id); a text file outside
    the corpus is read on its own, so any citation can be followed.
    """
    readings = parse_reference(reference)
    documents = _corpus_documents(corpus_location, [path for path, _ in readings])
    # The longest PATH that names a document or a file, as a file name is
    # whole (`notes:2024:3`, a file named notes:2024); when none does, the
    # shortest, PATH:LINE:COL as natoqa prints it, says what is missing.
    path, spec = readings[-1]
    doc = None
    for candidate, candidate_spec in readings:
        doc = _in_corpus(candidate, documents)
        if doc is not None or os.path.exists(candidate):
            path, spec = candidate, candidate_spec
            break
    line, col, last = _numbers(reference, spec)
    if doc is None:
        if os.path.isdir(path):
            raise UsageError(f"{path}: is a folder; show takes a document's PATH:LINE")
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such document in the corpus, and no such file")
        try:
            doc = read_document(path)  # a pipe or a device: refused there
        except CorpusError as exc:
            # The file was named as the reference's PATH, not as the corpus:
            # one that is binary, a device or unreadable is a bad reference
            # (exit 2), as a missing file or a folder is.
            raise UsageError(str(exc)) from None
    for number in (line, last):
        if not 1 <= number <= len(doc.lines):
            raise UsageError(f"{reference}: {doc.path} has {len(doc.lines)} lines; there is no line {number}")
    # Columns count characters from 1, as natoqa's citations do: a mistyped
    # one is an error, not a citation that seems to hold.
    width = len(doc.lines[line - 1])
    if col is not None and not 1 <= col <= max(width, 1):
        raise UsageError(f"{reference}: line {line} of {doc.path} has {width} characters; there is no column {col}")
    return doc, line, last


def _corpus_documents(corpus_location: str | None, paths: list[str]) -> tuple[Document, ...]:
    try:
        corpus: Corpus = load_corpus(corpus_location)
    except CorpusError:
        # The file itself can still be shown, but not past a corpus the
        # user named that does not load (`--corpus /typo`): that says so.
        if corpus_location is None and any(os.path.isfile(path) for path in paths):
            return ()
        raise
    return corpus.documents


def _in_corpus(path: str, documents: tuple[Document, ...]) -> Document | None:
    real = os.path.realpath(path) if os.path.exists(path) else None
    for doc in documents:
        if doc.path == path or doc.id == path:
            return doc
        if real is not None and os.path.realpath(doc.path) == real:
            return doc
    return None
