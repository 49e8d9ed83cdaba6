"""Following a citation: from `PATH:LINE[:COL]` back to a document and line."""

from __future__ import annotations

import os
import re

from natoqa.corpus import Corpus, Document, load_corpus, read_document
from natoqa.errors import CorpusError, UsageError

# PATH:LINE, PATH:LINE:COL, or PATH:FIRST-LAST as natoqa prints a passage's
# lines (`show`'s header, --explain's runner-up). DOTALL: a file name may
# hold a newline.
_REFERENCE = re.compile(r"^(?P<path>.+?):(?P<line>[0-9]+)(?:-(?P<last>[0-9]+)|(?::(?P<col>[0-9]+))?:?)$", re.DOTALL)

# Past any line a document can have (documents are at most 50 MB), and
# short of what int() refuses to parse (4,300 digits).
_MAX_DIGITS = 12


def parse_reference(reference: str) -> tuple[str, int, int | None, int]:
    """(path, line, column or None, last line) of a reference; the last line
    is the line itself but for a range."""
    match = _REFERENCE.match(reference.strip())
    if not match:
        raise UsageError(f"{reference!r} is not a reference; expected PATH:LINE, PATH:LINE:COL or PATH:FIRST-LAST")
    numbers = [match["line"], match["col"] or "0", match["last"] or "0"]
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n in numbers):
        raise UsageError(f"{reference!r}: line or column number too large")
    line = int(match["line"])
    last = int(match["last"]) if match["last"] else line
    if last < line:
        raise UsageError(f"{reference!r}: the range ends before it starts")
    return match["path"], line, int(match["col"]) if match["col"] else None, last


def find_reference(reference: str, corpus_location: str | None) -> tuple[Document, int, int]:
    """The document a reference names, its line and last line, checked to exist.

    The path is looked up among the corpus documents (by the path natoqa
    prints, by the file itself, or by document id); a text file outside
    the corpus is read on its own, so any citation can be followed.
    """
    path, line, col, last = parse_reference(reference)
    doc = _find_in_corpus(path, corpus_location)
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


def _find_in_corpus(path: str, corpus_location: str | None) -> Document | None:
    try:
        corpus: Corpus = load_corpus(corpus_location)
    except CorpusError:
        # The file itself can still be shown, but not past a corpus the
        # user named that does not load (`--corpus /typo`): that says so.
        if corpus_location is None and os.path.isfile(path):
            return None
        raise
    real = os.path.realpath(path) if os.path.exists(path) else None
    for doc in corpus.documents:
        if doc.path == path or doc.id == path:
            return doc
        if real is not None and os.path.realpath(doc.path) == real:
            return doc
    return None
