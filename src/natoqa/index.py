"""The BM25 index over a corpus's passages, and ranking passages for a question.

rank-bm25 computes the collection statistics (document frequencies, IDF,
lengths) when the index is built. Queries are then scored from an inverted
index of precomputed term weights, which gives exactly rank-bm25's
`get_scores` for the passages that share a term with the question, and zero
for the rest, without visiting every passage in Python for every question.

IDF: rank-bm25's BM25Okapi uses log((N - n + 0.5) / (n + 0.5)), which is
zero or negative for a term in half the passages or more (rank_bm25 issues
#39 and #43) and then substitutes a floor. In a one-article corpus "NATO" is
in most passages, so a question about NATO would be pushed *away* from the
passages that mention it. natoqa uses Lucene's form,
log(1 + (N - n + 0.5) / (n + 0.5)): the same ordering for rare terms, always
positive, and smoothly small for very common ones.
"""

from __future__ import annotations

import json
import math
import os
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from operator import add, mul, truediv

from natoqa import text as textmod
from natoqa.corpus import Corpus

# The zips run for every question or pool passage take no strict= (noqa:
# B905): a keyword costs the call its parsing, some 1,000 instructions
# (CPython 3.11), and what they pair has one length by construction.

# k1 below Robertson's 1.2: passages are short, so term frequency should
# saturate early; b as Anserini/Lucene use it. Tuned in bench/quality.py.
K1 = 0.9
B = 0.4

# Length of the shared beginning that lets an unknown question word stand
# in for a corpus word: five letters join "deploy" and "deployment" while
# keeping most accidental neighbours apart.
PREFIX = 5


@lru_cache(maxsize=1 << 16)  # the re-ranker asks it of every question term's document count
def lucene_idf(n_docs: int, doc_freq: int) -> float:
    """Lucene's BM25 IDF: positive for every term, however common."""
    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


@dataclass(frozen=True)
class Sentence:
    start: int  # offset in the passage text
    end: int  # exclusive
    terms: tuple[str, ...]  # stemmed content terms, in order


@dataclass(frozen=True)
class Hit:
    passage: int  # index into corpus.passages
    score: float


# The most passages Index.placed's sets hold in all.
PLACED_MEMO = 2_000_000


class Memo(dict):
    """A memo kept on an index that empties itself when the sizes of what
    it holds pass a limit: a bound on a long batch's memory."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.size = 0

    def put(self, key, value, size: int = 1):
        if self.size + size > self.limit:
            self.clear()
            self.size = 0
        self[key] = value
        self.size += size
        return value


class Index:
    """BM25 statistics, postings and sentence analysis for one corpus.

    Everything computed from the corpus text lives in the attributes named
    in STATE, as plain data (lists, dicts, strings, numbers), so the cache
    (natoqa.store) can save and restore an index without re-analysing text.
    The per-passage analyses (terms, sentences, where) are held as compact
    JSON texts decoded on first read (Packed), and the postings as arrays
    (Postings): a 100,000-passage corpus would need gigabytes as Python
    dicts and tuples.
    """

    STATE = (
        "k1",
        "b",
        "passage_terms",
        "sentences",
        "n_passages",
        "avgdl",
        "idf",
        "doc_len",
        "postings",
        "unseen_idf",
        "passage_doc",
        "title_postings",
        "where",
        "heading",
        "prefixes",
        "unplaced",
        "sentence_counts",
        "word_stems",
    )

    def __init__(self, corpus: Corpus, k1: float = K1, b: float = B, progress=None):
        self.corpus = corpus
        self.k1 = k1
        self.b = b
        passages = corpus.passages
        n = len(passages)
        terms_rows: list[bytes] = []
        sentence_rows: list[bytes] = []
        where_rows: list[bytes] = []
        self.heading: list[bool] = []
        self.sentence_counts: list[int] = []
        self.doc_len: list[int] = []
        # where[p][key] = sentence numbers of passage p holding the key: a
        # term, or a bigram "a b" of adjacent content terms. Sentence choice
        # and phrase matching read it instead of re-scanning the text.
        # unplaced[term] = passages holding the term that no sentence of
        # theirs lists (a word ending exactly where the splitter ends a
        # sentence), so "which passages' `where` has this term" is the
        # term's postings minus these, without decoding any `where`.
        self.unplaced: dict[str, list[int]] = {}
        doc_freq: dict[str, int] = {}
        # Per term, the passages holding it and how often: weights need the
        # average length, known only once every passage is analysed.
        post_ids: dict[str, array] = {}
        post_tfs: dict[str, array] = {}
        stems: dict[str, str] = {}
        if progress is not None:
            progress(0, n)
        for p, row in enumerate(_analysed(passages, stems)):
            freqs, unplaced, heading, n_sentences, terms_json, sentences_json, where_json = row
            self.sentence_counts.append(n_sentences)
            terms_rows.append(terms_json)
            sentence_rows.append(sentences_json)
            where_rows.append(where_json)
            self.heading.append(heading)
            self.doc_len.append(sum(freqs.values()))
            for term, tf in freqs.items():
                ids = post_ids.get(term)
                if ids is None:
                    ids = post_ids[term] = array("i")
                    post_tfs[term] = array("i")
                    doc_freq[term] = 1
                else:
                    doc_freq[term] += 1
                ids.append(p)
                post_tfs[term].append(tf)
            for term in unplaced:
                self.unplaced.setdefault(term, []).append(p)
            if progress is not None and p % 256 == 255:
                progress(p + 1, n)
        self.passage_terms = Packed("plain", terms_rows)
        self.sentences = Packed("sentences", sentence_rows)
        self.where = Packed("plain", where_rows)
        # Every word of the corpus and its stem (how many, then the words and
        # the stems one a line: a word holds no white space), for a process
        # restored from the cache to know without stemming (text.know_stems).
        self.word_stems = (len(stems), "\n".join(stems), "\n".join(stems.values()))
        # The document title is a field of every passage of the document:
        # an article about the Normans rarely repeats "Normans" in each
        # paragraph, but its questions name them.
        doc_number = {doc.id: i for i, doc in enumerate(corpus.documents)}
        self.passage_doc: list[int] = [doc_number[p.document] for p in passages]
        self.title_postings: dict[str, list[int]] = {}
        for i, doc in enumerate(corpus.documents):
            for term in dict.fromkeys(textmod.terms(doc.title)):
                self.title_postings.setdefault(term, []).append(i)
        self._build_statistics(doc_freq, post_ids, post_tfs)
        # prefixes[first five letters] = corpus terms starting so, most
        # frequent first: a question word the corpus never uses
        # ("deployment") can still meet a relative ("deploy").
        self.prefixes: dict[str, list[str]] = {}
        for term in sorted(doc_freq, key=lambda t: (-doc_freq[t], t)):
            if len(term) >= PREFIX and term.isalpha():
                self.prefixes.setdefault(term[:PREFIX], []).append(term)
        if progress is not None:
            progress(n, n)

    def _build_statistics(self, doc_freq, post_ids, post_tfs) -> None:
        # rank-bm25's BM25Okapi statistics (see _rank_bm25_model), computed
        # here in the same order of operations so every float is the same,
        # without its per-passage dicts.
        self.n_passages = len(self.doc_len)
        self.avgdl = sum(self.doc_len) / self.n_passages if self.n_passages else 0.0
        n = self.n_passages
        self.idf: dict[str, float] = {term: lucene_idf(n, df) for term, df in doc_freq.items()}
        # postings[term] = [(passage, tf weight)], the weight being the
        # passage-dependent factor of BM25 so a query is one multiply-add
        # per posting.
        k1, b, avgdl = self.k1, self.b, self.avgdl or 1.0
        k1_1 = k1 + 1
        norms = [k1 * (1 - b + b * length / avgdl) for length in self.doc_len]
        weights = {}
        norm_of = norms.__getitem__
        for term, ids in post_ids.items():
            # tf * (k1 + 1) / (tf + norm) for each posting, by C iterators.
            tfs = post_tfs[term]
            weights[term] = array("d", map(truediv, map(mul, tfs, repeat(k1_1)), map(add, tfs, map(norm_of, ids))))
        self.postings = Postings(post_ids, weights)
        # The IDF a term would have if no passage contained it: the
        # question's weight for words the corpus never uses.
        self.unseen_idf = lucene_idf(self.n_passages, 0)

    def placed(self, term: str) -> frozenset[int]:
        """The passages whose `where` lists the term, as a set (memoized,
        emptied past PLACED_MEMO passages in all: a long batch on a large
        corpus would otherwise keep a set per word it ever met)."""
        try:
            memo = self._placed
        except AttributeError:
            memo = self._placed = Memo(PLACED_MEMO)
        found = memo.get(term)
        if found is None:
            found = frozenset(self.postings.ids(term))
            missing = self.unplaced.get(term)
            if missing:
                found = found.difference(missing)
            memo.put(term, found, len(found))
        return found

    def term_idf(self, term: str) -> float:
        return self.idf.get(term, self.unseen_idf)

    def scores(self, query_terms) -> dict[int, float]:
        """BM25 score of every passage sharing a term with the query."""
        acc: dict[int, float] = {}
        get = acc.get
        for term in dict.fromkeys(query_terms):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf[term]
            for p, weight in postings:
                acc[p] = get(p, 0.0) + idf * weight
        return acc

    def scores_weighted(self, query_terms, weights) -> dict[int, float]:
        """BM25 with a given weight per query term in place of its IDF."""
        acc: dict[int, float] = {}
        postings = self.postings
        for term, w in zip(query_terms, weights):  # noqa: B905
            found = postings.get(term)
            if not found:
                continue
            # acc[p] = acc.get(p, 0.0) + w * tf weight for each posting (a
            # passage appears once a list).
            acc = accumulate(acc, found.ids, w, found.weights, add)
        return acc

    def search(self, query_terms, top: int) -> list[Hit]:
        """The `top` best passages; ties go to the earlier passage."""
        acc = self.scores(query_terms)
        best = sorted(acc.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [Hit(p, s) for p, s in best]


# Below this many pairs a posting list is added to the scores by one zip
# of C iterators; from it on, by merge_into's set intersection and copies.
MERGE_MIN = 16


def accumulate(acc: dict, ids, w: float, weights, op) -> dict:
    """acc with acc[p] = op(acc.get(p, 0.0), w x weight) for each (p, weight)
    of a posting list (ids, weights), by C iterators; `op` as merge_into's.
    An empty acc is replaced by the products themselves (op(0.0, x) is x),
    a short list is zipped in, a long one merged (merge_into)."""
    products = map(mul, repeat(w), weights)
    if not acc:
        return dict(zip(ids, products))  # noqa: B905
    if len(ids) < MERGE_MIN:
        acc.update(zip(ids, map(op, map(acc.get, ids, repeat(0.0)), products)))  # noqa: B905
    else:
        merge_into(acc, dict(zip(ids, products)), op)  # noqa: B905
    return acc


def merge_into(acc: dict, new: dict, op) -> None:
    """acc[p] = op(acc.get(p, 0.0), v) for each (p, v) of `new`, in new's
    order, for an `op` with op(0.0, v) == v (add, max: the weights are >=
    0): the same floats, keys and key order as acc.update(zip(new,
    map(op, map(acc.get, new, repeat(0.0)), new.values()))). Only the
    passages both hold (a C-level set intersection) go through op; the
    others are copied dict to dict, a fraction of the zip's cost a pair
    (some 1,400 instructions: two maps, a call of op and of acc.get), and
    most passages a posting list reaches have no score yet."""
    common = acc.keys() & new.keys()
    if common:
        # Read before the copy overwrites them; a set iterates in one order.
        fixed = dict(zip(common, map(op, map(acc.__getitem__, common), map(new.__getitem__, common))))  # noqa: B905
        acc.update(new)
        acc.update(fixed)
    else:
        acc.update(new)


class PostingList:
    """One term's postings: iterates as (passage, weight) pairs, from arrays."""

    __slots__ = ("ids", "weights")

    def __init__(self, ids, weights):
        self.ids, self.weights = ids, weights

    def __iter__(self):
        return zip(self.ids, self.weights, strict=True)

    def __len__(self):
        return len(self.ids)

    def __bool__(self):
        return len(self.ids) > 0

    def __eq__(self, other):
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Postings(Mapping):
    """term -> PostingList, over one array of passage ids and one of weights
    per term (natoqa.store keeps the same on disk)."""

    def __init__(self, ids: dict, weights: dict):
        self._ids = ids
        self._weights = weights

    def __len__(self):
        return len(self._ids)

    def __iter__(self):
        return iter(self._ids)

    def __contains__(self, term):
        return term in self._ids

    def __getitem__(self, term):
        return PostingList(self._ids[term], self._weights[term])

    def get(self, term, default=None):
        ids = self._ids.get(term)
        return default if ids is None else PostingList(ids, self._weights[term])

    def ids(self, term):
        return self._ids.get(term, ())

    def arrays(self, term):
        """(ids, weights) of a term: arrays of int32 and float64."""
        return self._ids[term], self._weights[term]


def _decode_sentences(rows) -> tuple:
    return tuple(Sentence(start, end, tuple(terms)) for start, end, terms in rows)


# How each kind of Packed item turns from its JSON value back into what the
# index holds. The cache names a codec, never code.
CODECS = {"plain": None, "sentences": _decode_sentences}


class Packed(dict):
    """A list whose items are kept as JSON texts, decoded when first read.

    A dict of the items decoded so far, so that reading one again is a
    lookup in C. It behaves as a sequence: len, iteration and == go by
    position.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, codec: str, rows: list[bytes]):
        super().__init__()
        self.codec = codec
        self.rows = rows
        self._decode = CODECS[codec]

    def __missing__(self, i):
        if type(i) is not int:
            raise TypeError(f"indices must be integers, not {type(i).__name__}")
        n = len(self.rows)
        if i < 0:
            if i < -n:
                raise IndexError(i)
            return self[i + n]
        item = json.loads(self.rows[i])  # IndexError past the end
        if self._decode is not None:
            item = self._decode(item)
        dict.__setitem__(self, i, item)
        return item

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return (self[i] for i in range(len(self.rows)))

    def __contains__(self, value):
        return any(v == value for v in self)

    def __eq__(self, other):
        return list(self) == list(other)


# Below this many passages the analysis runs in this process; above, in
# worker processes (one a core): starting them costs more than small
# corpora take.
PARALLEL_MIN = 4_000
CHUNK = 500


def _analysed(passages, stems: dict[str, str]):
    """Each passage's analysis (see _analyse_passage), in passage order;
    `stems` gets each word of the passages and its stem."""
    n = len(passages)
    workers = min(os.cpu_count() or 1, 4)
    if n >= PARALLEL_MIN and workers >= 2:
        # Imported here: it costs about 8 ms, which a question about a
        # cached or small corpus never needs.
        import multiprocessing

        if multiprocessing.current_process().daemon:
            workers = 1
    if n < PARALLEL_MIN or workers < 2:
        for passage in passages:
            yield _analyse_passage(passage.text, stems)
        return
    chunks = ([passages[i].text for i in range(start, min(start + CHUNK, n))] for start in range(0, n, CHUNK))
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        for passage in passages:
            yield _analyse_passage(passage.text, stems)
        return
    with context.Pool(workers) as pool:
        for rows, seen in pool.imap(_analyse_chunk, chunks):
            stems.update(seen)
            yield from rows


def _analyse_chunk(texts: list[str]) -> tuple[list[tuple], dict[str, str]]:
    """The chunk's analyses, and its words with their stems (each once: a
    chunk's words repeat)."""
    stems: dict[str, str] = {}
    return [_analyse_passage(text, stems) for text in texts], stems


def _analyse_passage(text: str, stems: dict[str, str] | None = None) -> tuple:
    """(term counts, terms missing from `where`, is heading, sentence count,
    and the JSON of the passage's terms, sentences and `where`) for one
    passage; `stems`, when given, gets each of its words and the word's stem."""
    from natoqa import shortanswer

    # One pass of the short-answer tokenizer serves both analyses: its
    # tokens are text.terms_with_spans's tokens with a currency sign before
    # or a % after (never inside), so each term is its token's stem, at the
    # token's span without those signs.
    stop = textmod.stopwords()
    tokens = shortanswer.tokenize(text, 0, len(text))
    if stems is not None:
        stems.update([(t.word, t.stem) for t in tokens if t.word])
    spans = []
    append = spans.append
    for t in tokens:
        word = t.word
        if word and word not in stop:
            raw = t.raw
            append((t.stem, t.start + (raw[0] in "$\u00a3\u20ac"), t.end - (raw[-1] == "%")))
    terms = [t for t, _, _ in spans]
    sentences = _sentences(text, spans)
    where = _where(sentences, _kinds(text, sentences, tokens))
    freqs: dict[str, int] = {}
    for term in terms:
        freqs[term] = freqs.get(term, 0) + 1
    unplaced = [term for term in freqs if term not in where]
    return (
        freqs,
        unplaced,
        _is_heading(text, len(spans)),
        len(sentences),
        _json(terms),
        _json([[s.start, s.end, s.terms] for s in sentences]),
        _json(where),
    )


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _sentences(passage_text: str, spans) -> tuple[Sentence, ...]:
    out = []
    i = 0
    for start, end in textmod.sentence_spans(passage_text):
        sentence_terms = []
        while i < len(spans) and spans[i][1] < end:
            if spans[i][1] >= start:
                sentence_terms.append(spans[i][0])
            i += 1
        out.append(Sentence(start, end, tuple(sentence_terms)))
    return tuple(out)


# Keys of `where` that are not terms: the sentences holding a phrase of
# each kind of short answer (see natoqa.shortanswer), so the answer type a
# question asks for can steer the sentence choice without re-reading text.
KIND_KEY = "\0"


def _kinds(passage_text: str, sentences: tuple[Sentence, ...], tokens=None) -> dict[str, list[int]]:
    """`where`'s kind keys. `tokens`, the passage's short-answer tokens when
    given, are sliced per sentence instead of tokenizing it again: the same
    tokens unless one crosses the sentence's edge, which falls back."""
    from natoqa import shortanswer

    starts = [t.start for t in tokens] if tokens is not None else None
    out: dict[str, list[int]] = {}
    for i, sentence in enumerate(sentences):
        if starts is None:
            found = None
        else:
            lo, hi = bisect_left(starts, sentence.start), bisect_left(starts, sentence.end)
            crossed = (lo and tokens[lo - 1].end > sentence.start) or (hi and tokens[hi - 1].end > sentence.end)
            found = None if crossed else tokens[lo:hi]
        if found is None:
            found = shortanswer.tokenize(passage_text, sentence.start, sentence.end)
        for kind in sorted(
            {
                kind
                for a, _, kind in shortanswer.candidates(passage_text, found, phrases=False)
                if kind != "phrase" and (kind != "name" or a > 0)
            }
        ):
            out.setdefault(KIND_KEY + kind, []).append(i)
    return out


def _where(sentences: tuple[Sentence, ...], kinds: dict[str, list[int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = dict(kinds)
    for i, sentence in enumerate(sentences):
        seen = set()
        terms = sentence.terms
        for j, term in enumerate(terms):
            keys = (term, f"{terms[j - 1]} {term}") if j else (term,)
            for key in keys:
                if key not in seen:
                    seen.add(key)
                    out.setdefault(key, []).append(i)
    return out


def _is_heading(text: str, n_terms: int) -> bool:
    """A one-line passage of a few words without closing punctuation: a title
    or caption line, which names a subject but never states an answer."""
    line = text.strip()
    return "\n" not in line and n_terms <= 12 and not line.endswith((".", "?", "!", '"', "\u201d", ":"))


def _rank_bm25_model(tokenized, k1: float, b: float):
    """rank-bm25's BM25Okapi with Lucene's always-positive IDF."""
    from rank_bm25 import BM25Okapi  # imported only when an index is built

    class LuceneBM25(BM25Okapi):
        def _calc_idf(self, nd):
            self.idf = {term: lucene_idf(self.corpus_size, freq) for term, freq in nd.items()}

    return LuceneBM25(tokenized, k1=k1, b=b)
