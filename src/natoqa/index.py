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

import math
from dataclasses import dataclass

from natoqa import text as textmod
from natoqa.corpus import Corpus

# k1 below Robertson's 1.2: passages are short, so term frequency should
# saturate early; b as Anserini/Lucene use it. Tuned in bench/quality.py.
K1 = 0.9
B = 0.4

# Length of the shared beginning that lets an unknown question word stand
# in for a corpus word: five letters join "deploy" and "deployment" while
# keeping most accidental neighbours apart.
PREFIX = 5


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


class Index:
    """BM25 statistics, postings and sentence analysis for one corpus.

    Everything computed from the corpus text lives in the attributes named
    in STATE, as plain data (lists, dicts, strings, numbers), so the cache
    (natoqa.store) can save and restore an index without re-analysing text.
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
    )

    def __init__(self, corpus: Corpus, k1: float = K1, b: float = B):
        self.corpus = corpus
        self.k1 = k1
        self.b = b
        self.passage_terms: list[list[str]] = []
        self.sentences: list[tuple[Sentence, ...]] = []
        # where[p][key] = sentence numbers of passage p holding the key: a
        # term, or a bigram "a b" of adjacent content terms. Sentence choice
        # and phrase matching read it instead of re-scanning the text.
        self.where: list[dict[str, list[int]]] = []
        self.heading: list[bool] = []
        for passage in corpus.passages:
            spans = textmod.terms_with_spans(passage.text)
            self.passage_terms.append([t for t, _, _ in spans])
            sentences = _sentences(passage.text, spans)
            self.sentences.append(sentences)
            self.where.append(_where(sentences, _kinds(passage.text, sentences)))
            self.heading.append(_is_heading(passage.text, len(spans)))
        # The document title is a field of every passage of the document:
        # an article about the Normans rarely repeats "Normans" in each
        # paragraph, but its questions name them.
        doc_number = {doc.id: i for i, doc in enumerate(corpus.documents)}
        self.passage_doc: list[int] = [doc_number[p.document] for p in corpus.passages]
        self.title_postings: dict[str, list[int]] = {}
        for i, doc in enumerate(corpus.documents):
            for term in dict.fromkeys(textmod.terms(doc.title)):
                self.title_postings.setdefault(term, []).append(i)
        self._build_statistics()
        # prefixes[first five letters] = corpus terms starting so, most
        # frequent first: a question word the corpus never uses
        # ("deployment") can still meet a relative ("deploy").
        self.prefixes: dict[str, list[str]] = {}
        for term in sorted(self.postings, key=lambda t: (-len(self.postings[t]), t)):
            if len(term) >= PREFIX and term.isalpha():
                self.prefixes.setdefault(term[:PREFIX], []).append(term)

    def _build_statistics(self) -> None:
        bm25 = _rank_bm25_model(self.passage_terms, self.k1, self.b)
        self.n_passages = bm25.corpus_size
        self.avgdl = bm25.avgdl
        self.idf: dict[str, float] = dict(bm25.idf)
        self.doc_len: list[int] = list(bm25.doc_len)
        # postings[term] = [(passage, tf weight)], the weight being the
        # passage-dependent factor of BM25 so a query is one multiply-add
        # per posting.
        self.postings: dict[str, list[tuple[int, float]]] = {}
        k1, b, avgdl = self.k1, self.b, self.avgdl or 1.0
        for p, freqs in enumerate(bm25.doc_freqs):
            norm = k1 * (1 - b + b * self.doc_len[p] / avgdl)
            for term, tf in freqs.items():
                self.postings.setdefault(term, []).append((p, tf * (k1 + 1) / (tf + norm)))
        # The IDF a term would have if no passage contained it: the
        # question's weight for words the corpus never uses.
        self.unseen_idf = lucene_idf(self.n_passages, 0)

    def term_idf(self, term: str) -> float:
        return self.idf.get(term, self.unseen_idf)

    def scores(self, query_terms) -> dict[int, float]:
        """BM25 score of every passage sharing a term with the query."""
        acc: dict[int, float] = {}
        for term in dict.fromkeys(query_terms):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf[term]
            for p, weight in postings:
                acc[p] = acc.get(p, 0.0) + idf * weight
        return acc

    def scores_weighted(self, query_terms, weights) -> dict[int, float]:
        """BM25 with a given weight per query term in place of its IDF."""
        acc: dict[int, float] = {}
        postings = self.postings
        for term, w in zip(query_terms, weights, strict=False):
            for p, tf_weight in postings.get(term, ()):
                acc[p] = acc.get(p, 0.0) + w * tf_weight
        return acc

    def search(self, query_terms, top: int) -> list[Hit]:
        """The `top` best passages; ties go to the earlier passage."""
        acc = self.scores(query_terms)
        best = sorted(acc.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [Hit(p, s) for p, s in best]


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


def _kinds(passage_text: str, sentences: tuple[Sentence, ...]) -> dict[str, list[int]]:
    from natoqa import shortanswer

    out: dict[str, list[int]] = {}
    for i, sentence in enumerate(sentences):
        tokens = shortanswer.tokenize(passage_text, sentence.start, sentence.end)
        for kind in sorted(
            {
                kind
                for a, _, kind in shortanswer.candidates(passage_text, tokens)
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
