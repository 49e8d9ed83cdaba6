"""The first stage on numpy arrays, for a large corpus.

answer._full_pool scores every passage that shares a word with the
question in a dict, one posting at a time. On a corpus of 100,000 passages
a common word's postings run to tens of thousands, and that walk is most of
a question's time. Here the same sums run over a dense array of scores,
one per passage, in numpy.

The pool and every float are the ones the dict walk gives: a score is built
by the same IEEE operations in the same order (each term's weight times
each posting's tf weight, added term by term from 0.0, then each related
word's best relative), and the pool is ordered by the same keys, ties to the
earlier passage. numpy is installed with rank-bm25 (its one dependency);
it is imported only when a batch on a large corpus is long enough to pay
for it (see answer.ARRAYS_MIN), and without it the dict walk serves.
"""

from __future__ import annotations


def numpy():
    """The numpy module, or None where it cannot be imported."""
    try:
        import numpy as np
    except Exception:  # noqa: BLE001 - missing or broken (a bad build raises more than ImportError): the dict walk serves
        return None
    return np


def pool(np, index, q, title_docs, w_title: float, factors, k: int, memo):
    """(pool, BM25 scores of the pool's passages), as answer._full_pool.

    `factors` are the passages' heading factors, `memo` a bounded memo
    (index.Memo) for each related word's best-relative weights."""
    arrays = arrays_of(np, index, factors)
    postings = index.postings
    found = [postings.get(term) for term in q.terms]
    lists = [(f, w) for f, w in zip(found, q.idf, strict=False) if f]
    ids, values = [], []
    if lists:
        # Every term's postings as one array, each weight times its term's
        # IDF (w x tf, as a product per term gives): two numpy calls a
        # question, not two a term.
        ids.append(np.frombuffer(b"".join(f.ids for f, _ in lists), dtype=np.intc))
        values.append(_weighted(np, lists))
    for term, relatives in q.related:
        found = _related(np, index, term, relatives, memo)
        ids.append(found[0])
        values.append(found[1])
    if not ids:
        return [], {}
    # bincount adds each passage's values from 0.0 in the order given,
    # terms first and then each related word: the dict walk's sums.
    acc = np.bincount(np.concatenate(ids), np.concatenate(values), index.n_passages)
    # Every weight added is above zero (a positive IDF times a positive tf
    # weight), so the passages matched are exactly those scored above zero.
    # (The arrays' own methods: np.flatnonzero and np.argpartition are
    # Python wrappers around them.)
    matched = (acc > 0.0).nonzero()[0]
    if not len(matched):
        return [], {}
    scores = acc[matched]
    doc_of = arrays.doc_of[matched]
    if title_docs:
        # (A document with no passages may still have a matching title.)
        title = np.zeros(max(arrays.n_docs, max(title_docs) + 1))
        title[list(title_docs)] = list(title_docs.values())
        keys = -(scores + w_title * title[doc_of]) * arrays.factors[matched]
    else:
        keys = -scores * arrays.factors[matched]
    size = min(k, len(matched))
    if size < len(matched):
        # Every key at or under the size-th smallest, then sorted by (key,
        # passage) as heapq.nsmallest would, ties to the earlier passage.
        kth = keys[keys.argpartition(size - 1)[:size]].max()
        near = (keys <= kth).nonzero()[0]
    else:
        near = np.arange(len(matched))
    order = near[np.lexsort((matched[near], keys[near]))][:size]
    chosen = matched[order].tolist()
    return chosen, dict(zip(chosen, acc[matched[order]].tolist(), strict=True))


class _Arrays:
    __slots__ = ("doc_of", "factors", "n_docs")

    def __init__(self, np, index, factors):
        self.doc_of = np.asarray(index.passage_doc, dtype=np.intp)
        self.factors = np.asarray(factors, dtype=np.float64)
        self.n_docs = max(index.passage_doc, default=-1) + 1


def arrays_of(np, index, factors) -> _Arrays:
    """The index's per-passage arrays, made on first use (the index is fixed)."""
    found = getattr(index, "_first_stage_arrays", None)
    if found is None:
        found = index._first_stage_arrays = _Arrays(np, index, factors)
    return found


def _related(np, index, term: str, relatives, memo):
    """(passages, weights): for each passage lacking `term`, the best weight
    of its relatives there, as answer._related_postings (memoized on the
    word and its weighted relatives)."""
    key = (term, relatives)
    found = memo.get(key)
    if found is not None:
        return found
    postings = index.postings
    best = np.zeros(index.n_passages)
    lists = [(postings[r], w) for r, w, _ in relatives]
    # Each passage's best relative weight, every relative in one call (a
    # maximum is the same floats in any order): the dict walk's values.
    if lists:
        np.maximum.at(best, np.frombuffer(b"".join(f.ids for f, _ in lists), dtype=np.intc), _weighted(np, lists))
    reached = best > 0.0
    if term:
        # The passages whose `where` lists the word take none of its
        # relatives: its postings, less those no sentence lists (unplaced).
        own = np.zeros(index.n_passages, dtype=bool)
        own[np.frombuffer(postings[term].ids, dtype=np.intc)] = True
        unplaced = index.unplaced.get(term)
        if unplaced:
            own[list(unplaced)] = False
        reached &= ~own
    ids = reached.nonzero()[0]
    return memo.put(key, (ids, best[ids]), len(ids))


def _weighted(np, lists):
    """The tf weights of (postings, weight) pairs' lists, end to end, each
    times its list's weight: the products w x tf one at a time give (IEEE
    multiplication commutes), in one multiplication (the array's repeat:
    np.repeat is a Python wrapper around it)."""
    tf = np.frombuffer(b"".join(f.weights for f, _ in lists), dtype=np.float64)
    return np.array([w for _, w in lists]).repeat([len(f.ids) for f, _ in lists]) * tf
