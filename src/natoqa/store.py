"""Getting an Index for a corpus: built fresh, or read back from the on-disk cache."""

from __future__ import annotations

from natoqa.corpus import Corpus
from natoqa.index import Index


def load_index(corpus: Corpus, use_cache: bool = True) -> Index:
    """The index of `corpus`."""
    return Index(corpus)
