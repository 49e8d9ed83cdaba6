"""Following a citation: from `PATH:LINE[:COL]` back to a document and line."""

from __future__ import annotations

import os
import re

from natoqa.corpus import Corpus, Document, load_corpus
from natoqa.errors import CorpusError, UsageError

_REFERENCE = re.compile(r"^(?P<path>.+?):(?P<line>[0-9]+)(?::(?P<col>[0-9]+))?:?$")

# Past any line a document can have (documents are at most 50 MB), and
# short of what int() refuses to parse (4,300 digits).
_MAX_DIGITS = 12


def parse_reference(reference: str) -> tuple[str, int, int | None]:
    """(path, line, column or None) of a reference."""
    match = _REFERENCE.match(reference.strip())
    if not match:
        raise UsageError(f"{reference!r} is not a reference; expected PATH:LINE or PATH:LINE:COL")
    numbers = [match["line"], match["col"] or "0"]
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n in numbers):
        raise UsageError(f"{reference!r}: line or column number too large")
    return match["path"], int(match["line"]), int(match["col"]) if match["col"] else None


def find_reference(reference: str, corpus_location: str | None) -> tuple[Document, int]:
    """The document a reference names and its line, checked to exist.

    The path is looked up among the corpus documents (by the path natoqa
    prints, by the file itself, or by document id); a text file outside
    the corpus is read on its own, so any citation can be followed.
    """
    path, line, col = parse_reference(reference)
    doc = _find_in_corpus(path, corpus_location)
    if doc is None:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: no such document in the corpus, and no such file")
        doc = load_corpus(path).documents[0]
    if not 1 <= line <= len(doc.lines):
        raise UsageError(f"{reference}: {doc.path} has {len(doc.lines)} lines; there is no line {line}")
    # Columns count characters from 1, as natoqa's citations do: a mistyped
    # one is an error, not a citation that seems to hold.
    width = len(doc.lines[line - 1])
    if col is not None and not 1 <= col <= max(width, 1):
        raise UsageError(f"{reference}: line {line} of {doc.path} has {width} characters; there is no column {col}")
    return doc, line


def _find_in_corpus(path: str, corpus_location: str | None) -> Document | None:
    try:
        corpus: Corpus = load_corpus(corpus_location)
    except CorpusError:
        if os.path.isfile(path):
            return None  # the file itself can still be shown
        raise
    real = os.path.realpath(path) if os.path.exists(path) else None
    for doc in corpus.documents:
        if doc.path == path or doc.id == path:
            return doc
        if real is not None and os.path.realpath(doc.path) == real:
            return doc
    return None
