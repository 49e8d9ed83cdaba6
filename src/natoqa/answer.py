"""From a question to quoted answers: rank passages, pick the sentence, cite it.

Ranking has two stages. BM25 over passages, with the document title as a
field of every passage, picks CANDIDATES passages cheaply. Each candidate
is then scored again from its best sentence: the question terms the
sentence holds, the question's word pairs it repeats (a phrase match is
stronger evidence than the same words scattered), and its neighbours. The
best sentence of the best passage is the quote.

The quote is always a verbatim span of a document: one sentence, or two
adjacent sentences when the second carries question terms the first lacks.
Its coordinates are 1-based lines and columns, end inclusive, computed from
the passage's own line numbers, so `Document.text_at` gives it back exactly.
Inside the quote, natoqa.shortanswer picks the short answer.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache, reduce
from itertools import chain, compress, filterfalse, repeat
from operator import add, attrgetter, itemgetter, mul

from natoqa import firststage, shortanswer
from natoqa import text as textmod
from natoqa.index import KIND_KEY, MERGE_MIN, PREFIX, Index, Memo, accumulate, lucene_idf, merge_into

# Hot zips take no strict= (noqa: B905), for the reason natoqa.index gives.

# How many passages get their sentences examined. Sentence evidence re-ranks
# among these, so it must be more than the answers shown.
CANDIDATES = 12

# Weights of the re-ranking score, each part a share of the question's IDF
# mass so that long and short questions are on one scale. Tuned on the even
# half of SQuAD 2.0 dev (bench/quality.py --half tune).
W_PASSAGE = 1.0  # the passage's BM25 score
W_SENTENCE = 2.0  # the best sentence's matched IDF
W_BIGRAM = 0.5  # question word pairs found adjacent in the sentence
W_NEIGHBOUR = 0.0  # the matched IDF of the sentences either side
W_TITLE = 0.5  # question terms in the document title
W_KIND = 0.1  # the sentence holds a phrase of the kind the question asks for

HEADING = 0.25  # the share of its score a heading passage keeps

# The re-ranking score of a pool passage: a weighted sum of these features
# (RERANK_FEATURES, each computed by _candidate; shares are over the
# question's mass), times HEADING for a heading. The best sentence is still
# the one the W_* weights above pick (it is the quote).
RERANK_FEATURES = (
    "bm25",  # the passage's BM25 score
    "title",  # question terms in the document title
    "sentence",  # the best sentence's matched IDF (relatives included)
    "phrase",  # question word pairs adjacent in the best sentence
    "cue",  # 1 when the best sentence holds a phrase of the wanted kind
    "neighbour",  # the matched IDF of the best sentence's neighbours
    "passage",  # the passage's matched IDF (each word once, else its best relative)
    "pairs",  # question word pairs adjacent anywhere in the passage
    "proximity",  # sentence x how close its question words stand (window)
    "pair",  # the own question terms the best sentence and a neighbour hold
    "first",  # 1 / (1 + the passage's first-stage place in the pool)
    "document",  # the question terms the passage's whole document holds
    "votes",  # the share of the pool's passages from the passage's document
    "relative",  # the passage's BM25 over the pool's best BM25
    "telling",  # the share of the question's telling weight the passage holds
    "telling_sentence",  # the share of it the best sentence holds
    "local",  # the share of the question's IDF within its document (see _Pool.local) the passage holds
    "local_sentence",  # the share of it the best sentence holds
    "density",  # sentence x the share of its terms that are the question's
    "unmatched",  # 1 - passage: the question's share the passage lacks
    "early",  # 1 / (1 + the best sentence's number)
    "short",  # the corpus's mean passage length over the passage's (at most SHORT_CAP)
)
# The hand-tuned score in these terms (W_PASSAGE, W_TITLE, W_SENTENCE, ...).
RERANK_OLD = (
    W_PASSAGE,
    W_TITLE,
    W_SENTENCE,
    W_SENTENCE * W_BIGRAM,
    W_SENTENCE * W_KIND,
    W_NEIGHBOUR,
) + (0.0,) * (len(RERANK_FEATURES) - 6)
# Fitted by bench/tools/rerank_fit.py (a conditional logit over each
# question's pool, the gold passage's probability maximized, L2 1e-3, the
# weights kept >= 0 so that _best_candidates' bounds hold) on the answerable
# questions of the even (tune) half of SQuAD 2.0 dev asked of the whole
# corpus; the gold passage is first among the 12 for 0.848 -> 0.866 of them
# (tune), 0.847 -> 0.868 (the odd, held-out half; 0.862 / 0.862 before
# "short" was added). Scaled to the old weights' sum (4.7) and rounded to 3
# decimals.
RERANK = (
    0.0,  # bm25: its share of the pool's best ("relative") says it better
    0.257,  # title
    0.487,  # sentence
    0.387,  # phrase
    0.201,  # cue
    0.021,  # neighbour
    0.07,  # passage
    0.196,  # pairs
    0.179,  # proximity
    0.106,  # pair
    0.0,  # first
    0.315,  # document
    0.29,  # votes
    0.886,  # relative
    0.385,  # telling
    0.0,  # telling_sentence
    0.019,  # local
    0.179,  # local_sentence
    0.402,  # density
    0.074,  # unmatched
    0.092,  # early
    0.155,  # short
)
# The "short" feature's cap: a passage of a few words is not that many
# times more likely to answer.
SHORT_CAP = 3.0

# An unknown question word (no passage has it) that shares its first letters
# with corpus words counts as the most frequent of them, at this share of
# that word's IDF.
PARTIAL = 0.5
# An unknown word with no such relative still counts in the question's mass,
# at this share of the largest IDF: part of the question nothing answers.
UNSEEN = 1.0

# Relatives of a question word from the WordNet lexicon (text.related) stand
# in for it where a passage lacks the word itself, at these shares of the
# smaller of the word's and the relative's IDF: a paraphrase ("Kremlin")
# meets the article's word ("Russian") but never outweighs an exact match.
# A question word counts once per passage or sentence: its own match, else
# its best relative. At most MAX_NEAR / MAX_FAR relatives per word, the
# lexicon's order (first senses first).
W_NEAR = 0.6
W_FAR = 0.3
MAX_NEAR = 6
MAX_FAR = 4
# The share of a word's telling weight (see confidence) a relative earns.
RELATED_CONFIDENCE = 0.4

# Below this confidence natoqa abstains. Confidence is the share of the
# question's telling weight (text.telling: rarity in English at large, not
# in this corpus) that the best passage holds. Corpus IDF cannot judge a
# word the corpus lacks; English rarity can: a question whose rare words
# ("Normandy", "Rollo") are absent is about something else, one missing
# only ordinary words ("called", "became") is probably answered.
# Calibrated in bench/quality.py to answer about 97.8% of SQuAD questions
# asked of their own article on the tune half (97.0% on the held-out half).
MIN_CONFIDENCE = 0.37
W_CONF_SENTENCE = 1.0
# A word the best sentence lacks whose far relative (see W_FAR) it holds
# counts at this share for the sentence.
CONF_FAR = 0.3
# A word the best passage lacks but its document uses elsewhere counts at
# this share for the passage: the document is about it, so the question
# probably is about this document (a question asked of the wrong corpus
# names things no document there mentions).
CONF_DOCUMENT = 0.3
# The question's telling weight is taken as this much larger than it is, so
# a question of one or two words needs more than a word's match to be
# answered: a short question matches something by accident far more easily.
CONF_PRIOR = 3.0
# Question words the document's title names add this share of their weight
# (over the same enlarged weight): the title states what a document is about.
W_CONF_TITLE = 0.3


@dataclass(frozen=True)
class Span:
    """A verbatim piece of a document with 1-based, end-inclusive coordinates."""

    text: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int


@dataclass(frozen=True)
class PassageRef:
    text: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Answer:
    rank: int
    score: float
    document: str
    title: str
    path: str
    quote: Span
    passage: PassageRef
    coverage: float  # share of the question's IDF mass the passage holds
    matched: tuple[str, ...]  # question terms found in the passage (stems)
    answer: Span | None = None  # the short answer inside the quote, if one stands out
    explain: dict | None = None  # with --explain: the numbers behind the choice


@dataclass(frozen=True)
class Result:
    question: str
    answered: bool
    answers: tuple[Answer, ...]
    reason: str = ""  # why there is no answer, when there is none
    # With an answer, the lexical engine's confidence in its first passage
    # (see `confidence`), which natoqa.dense weighs with its own signal;
    # None without one (a refusal looks the same whether it came before
    # ranking or after) and on natoqa.dense's fallback answers.
    confidence: float | None = None


@dataclass(frozen=True)
class Question:
    """A question analysed once: its terms and their weights in this index."""

    text: str
    terms: tuple[str, ...]  # distinct stemmed content terms (or their stand-ins), in order
    idf: tuple[float, ...]  # the weight of each term
    mass: float  # the question's whole weight, unknown words included
    bigrams: tuple[tuple[str, float], ...]  # ("a b", weight) for adjacent question terms
    kind: str  # the expected answer type, see shortanswer.question_kind
    words: tuple[str, ...]  # the question's normalized words, stopwords included
    telling: tuple[tuple[str, float], ...] = ()  # (term or stand-in, text.telling of the question's own word)
    # One entry per question word with relatives in the corpus, aligned with
    # `telling`'s words: (its term or stand-in or "", ((relative, weight, "near"|"far"), ...)).
    related: tuple[tuple[str, tuple[tuple[str, float, str], ...]], ...] = ()
    related_of: tuple[int, ...] = ()  # for each `telling` entry, its index in `related`, or -1
    related_words: tuple[str, ...] = ()  # for each `related` entry, the question's own word (stem)


# Not frozen: a dozen are made per question, and a frozen dataclass's
# __init__ costs several times a plain one's.
@dataclass(slots=True)
class Candidate:
    """A passage scored for a question, with the parts of its score."""

    passage: int
    score: float
    bm25: float
    title: float
    sentence: int  # the best sentence's number in the passage
    sentence_weight: float  # its matched IDF, phrase bonus included
    bigram: float
    neighbour: float
    weights: tuple[float, ...]  # every sentence's matched IDF
    features: tuple[float, ...] = ()  # the re-ranker's, see RERANK_FEATURES


_FIRST, _SECOND, _KIND = itemgetter(0), itemgetter(1), itemgetter(2)


def analyse(index: Index, question: str) -> Question:
    words = textmod.tokens_with_spans(question)
    plain = list(map(_FIRST, words))
    stop = textmod.stopwords()
    stems = list(map(textmod.stem, filterfalse(stop.__contains__, plain)))
    idf_of = index.idf
    known = list(map(idf_of.__getitem__, filter(idf_of.__contains__, stems)))
    top_idf = max(known) if known else index.unseen_idf
    weights: dict[str, float] = {}
    mass = 0.0
    sequence = []
    telling: dict[str, tuple[str, float]] = {}
    for term in stems:
        if term not in telling and term in weights and weights[term] < idf_of[term]:
            # The question's own word after an earlier word stood in by it
            # ("concentration ... concern"): it counts in full, as it would
            # have first, not at the stand-in's share as a repeat.
            telling[term] = (term, textmod.telling(term))
            mass += idf_of[term] - weights[term]
            weights[term] = idf_of[term]
            sequence.append(term)
            continue
        if term in telling or term in weights:
            seen = telling.get(term, (term, 0.0))[0]
            sequence.append(seen or None)
            continue
        idf = index.idf.get(term)
        if idf is None:
            stand_in = _stand_in(index, term)
            telling[term] = (stand_in or "", textmod.telling(term))
            if stand_in is None:
                mass += UNSEEN * top_idf
                sequence.append(None)
                continue
            idf = PARTIAL * index.idf[stand_in]
            term = stand_in
        else:
            telling[term] = (term, textmod.telling(term))
        if term not in weights:
            weights[term] = idf
            mass += idf
        sequence.append(term)
    related, related_of, related_words = _relatives(index, stems, telling, weights, top_idf)
    related, related_of, related_words = _phrase_relatives(
        index, question, words, stop, stems, telling, weights, top_idf, related, related_of, related_words
    )
    bigrams = {}
    for a, b in zip(sequence, sequence[1:]):  # noqa: B905
        if a and b and a != b:
            bigrams[f"{a} {b}"] = (weights[a] + weights[b]) / 2
    # Positional, in the fields' order (text, terms, idf, mass, bigrams, kind,
    # words, telling, related, related_of, related_words), as Answer's.
    return Question(
        question,
        tuple(weights),
        tuple(weights.values()),
        mass,
        tuple(bigrams.items()),
        shortanswer.question_kind(plain),
        tuple(plain),
        tuple(telling.values()),
        related,
        related_of,
        related_words,
    )


def _relatives(index: Index, stems, telling, weights, top_idf):
    """The lexicon relatives of each question word that the corpus uses."""
    own = set(stems) | set(weights)
    memo = _memo(index, "_weighted_relatives", WORDS_MEMO)
    related = []
    related_of = []
    words = []
    for word, (term, _) in telling.items():
        if term != word:
            # A word the corpus lacks: its relatives weigh as the question's
            # rarest word does.
            found = _weighted(*_corpus_relatives(index, word), top_idf, own)
        else:
            # A corpus word's weighted relatives are the same in every
            # question giving it the same weight, but for the question's own
            # words, left out: memoized with the names they were chosen from.
            base = weights[term]
            made = memo.get((word, base))
            if made is None:
                near, far = _corpus_relatives(index, word)
                names = frozenset(map(_FIRST, near + far))
                made = memo.put((word, base), (_weighted(near, far, base, ()) if names else (), names))
            found, names = made
            if not own.isdisjoint(names):
                found = _weighted(*_corpus_relatives(index, word), base, own)
        if found:
            related_of.append(len(related))
            related.append((term, found))
            words.append(word)
        else:
            related_of.append(-1)
    return tuple(related), tuple(related_of), tuple(words)


def _weighted(near, far, base: float, own) -> tuple[tuple[str, float, str], ...]:
    """The first MAX_NEAR near and MAX_FAR far relatives not in `own`, each
    weighted by its share of the lesser of its IDF and the word's `base`."""
    found = []
    for group, share, limit, kind in ((near, W_NEAR, MAX_NEAR, "near"), (far, W_FAR, MAX_FAR, "far")):
        n = 0
        for r, r_idf in group:
            if n >= limit:
                break
            if r in own:
                continue
            found.append((r, share * (base if base < r_idf else r_idf), kind))  # min(), without its call
            n += 1
    return tuple(found)


def _phrase_relatives(
    index, question, words, stop, stems, telling, weights, top_idf, related, related_of, related_words
):
    """Add the lexicon's one-word synonyms of two adjacent question words
    that WordNet lists as one lemma ("United Kingdom" -> "Britain"): a
    group standing in for the pair, and the relatives confidence counts
    for each of the two words."""
    if len(stems) < 2:
        return related, related_of, related_words
    pairs = []
    for (a, _, a_end), (b, b_start, _) in zip(words, words[1:]):  # noqa: B905
        # Two words of one name: nothing but space between them.
        if a not in stop and b not in stop and not question[a_end:b_start].strip():
            pairs.append((a, b))
    seen = set()
    slots = None
    for a, b in pairs:
        sa, sb = textmod.stem(a), textmod.stem(b)
        if (sa, sb) in seen:
            continue  # a name the question repeats counts once, as its words do
        seen.add((sa, sb))
        near, _ = _corpus_relatives(index, f"{sa}_{sb}")
        if not near:
            continue
        if slots is None:  # made for the few questions with such a pair
            own = set(stems) | set(weights)
            slots = {word: k for k, word in enumerate(telling)}
            related, related_of, related_words = list(related), list(related_of), list(related_words)
        # A stem `telling` lacks stands for itself: it is an earlier word's
        # stand-in ("britan" -> "britain" before "Great Britain").
        known = [weights[t] for t in (telling[x][0] if x in telling else x for x in (sa, sb)) if t in weights]
        base = max(known, default=top_idf)
        found = tuple((r, W_NEAR * min(r_idf, base), "near") for r, r_idf in near if r not in own)[:MAX_NEAR]
        if not found:
            continue
        group = len(related)
        related.append(("", found))
        related_words.append(f"{a} {b}")
        # In confidence each word counts through the pair's synonyms, not
        # its own relatives: "kingdom" alone is a "land", in "United
        # Kingdom" it is "Britain".
        for stem in (sa, sb):
            k = slots.get(stem)
            if k is not None:
                related_of[k] = group
    return tuple(related), tuple(related_of), tuple(related_words)


def _corpus_relatives(index: Index, word: str):
    """(near, far) lexicon relatives of a word that the corpus uses, each
    with its IDF: memoized per word, as the lexicon and the corpus are fixed."""
    memo = _memo(index, "_relatives_memo", WORDS_MEMO)
    found = memo.get(word)
    if found is None:
        near, far = textmod.related(word)
        idf = index.idf
        found = memo.put(
            word,
            (tuple((r, idf[r]) for r in near if r in idf), tuple((r, idf[r]) for r in far if r in idf)),
        )
    return found


# The most words (or terms) a per-word memo of the index keeps.
WORDS_MEMO = 500_000


def _stand_in(index: Index, term: str) -> str | None:
    """The most frequent corpus term sharing the unknown term's beginning."""
    if len(term) < PREFIX or not term.isalpha():
        return None
    relatives = index.prefixes.get(term[:PREFIX])
    return relatives[0] if relatives else None


def rank(index: Index, q: Question, depth: int, exact: int | None = None) -> list[Candidate]:
    """The best `depth` passages for a question, best first: the re-ranked
    CANDIDATES best of the first stage, then (for a deeper ranking) the
    rest, re-ranked among themselves.

    With `exact`, only the first `exact` are sure to be there (and in their
    place): a passage of the pool whose score cannot reach the exact-th best
    is left out unscored. The ones returned are the same objects, with the
    same scores, as without `exact` (which a ranking deeper than
    CANDIDATES ignores: it scores every passage).
    """
    mass = q.mass or 1.0
    title_docs: dict[int, float] = {}
    for term, idf in zip(q.terms, q.idf):  # noqa: B905
        for doc in index.title_postings.get(term, ()):
            title_docs[doc] = title_docs.get(doc, 0.0) + idf
    k = depth if depth > CANDIDATES else CANDIDATES
    factor = _heading_factors(index)
    pool, acc = _full_pool(index, q, title_docs, factor, k)
    plan = _plan(q)
    doc_of = index.passage_doc
    order = lambda c: (-c.score, c.passage)  # noqa: E731
    if exact is None or exact >= len(pool) or len(pool) > CANDIDATES:
        # The re-ranker's pool is the first stage's CANDIDATES best, however
        # deep the ranking goes: a passage past them is scored against the
        # same pool and listed after them, so the first answers are the
        # same whatever --top asks for.
        context = _Pool(index, q, pool[:CANDIDATES], acc)
        out = [
            _candidate(index, q, p, acc[p], title_docs.get(doc_of[p], 0.0), mass, plan, place, context)
            for place, p in enumerate(pool)
        ]
        return (sorted(out[:CANDIDATES], key=order) + sorted(out[CANDIDATES:], key=order))[:depth]
    out = _best_candidates(index, q, pool, acc, title_docs, mass, plan, exact)
    out.sort(key=order)
    return out[:depth]


def _best_candidates(index: Index, q: Question, pool, acc, title_docs, mass: float, plan, exact: int):
    """The pool's candidates that can be among its `exact` best: each
    passage's score is bounded first (its best sentence cannot hold more
    than every question word the passage holds), and passages are scored
    best bound first until the next bound falls short of the exact-th score.
    Scoring a candidate walks every sentence of its passage; bounding it
    looks up the question's words once."""
    own_terms, related = plan
    wanted = shortanswer.WANTED.get(q.kind)
    cue_key = KIND_KEY + wanted if wanted else None
    doc_of = index.passage_doc
    # The question's words and pairs as parallel tuples, tested against
    # each passage's `where` by C iterators (map, compress, filter).
    # (own_terms pairs them: see _plan.)
    terms, idfs = q.terms, q.idf
    # One loop for both, not two generators (functions made and run).
    groups = []
    related_top = 0.0  # each related word at its best relative's weight
    for _, words, weight in related:
        groups.append((words, weight.__getitem__))
        related_top += max(weight.values()) if weight else 0.0
    pairs, pair_weights = tuple(zip(*q.bigrams)) or ((), ())  # noqa: B905
    w = _named_weights(RERANK)
    # What a sentence's or the passage's matched IDF can reach, per unit:
    # the best sentence, its neighbours (two), the passage, proximity and
    # density (each at most the sentence's) and sentence-and-neighbour each
    # hold at most every question word the passage holds (every weight >= 0).
    per_top = w["sentence"] + 2 * w["neighbour"] + w["passage"] + w["proximity"] + w["pair"] + w["density"]
    per_pair = w["phrase"] + w["pairs"]  # the sentence's pairs are some of the passage's
    context = _Pool(index, q, pool, acc)
    # Three bounds. A rough one, with the document, telling and local
    # shares at their most (every question term's IDF, the whole share),
    # orders the passages and ends the walk: it needs only the question's
    # words looked up in the passage. A loose one, with those shares exact
    # (_Pool.exact) and every related word at its best relative's weight,
    # and a tight one, with only the relatives the passage holds, are
    # worked out for a passage the rougher ones cannot rule out, before
    # scoring it in full.
    shares_top = (
        w["document"] * sum(idfs) + (w["telling"] + w["telling_sentence"] + w["local"] + w["local_sentence"]) * mass
    )
    # The parts of the bound known before scoring, in the question's mass
    # units, their weights worked out once: the votes and relative BM25 as
    # _Pool.exact has them, the passage's own words (held >= own), its best
    # sentence at best the first.
    votes_get, title_get, heading = context.votes.get, title_docs.get, index.heading
    where_of = index.where
    w_bm25, w_title = w["bm25"], w["title"]
    c_votes = w["votes"] * mass / context.size
    c_relative = w["relative"] * mass / context.top_bm25
    c_first, c_unmatched = w["first"] * mass, w["unmatched"] * mass
    c_fixed = w["early"] * mass
    c_short = w["short"] * mass
    short_mean = index.avgdl or 1.0
    doc_len = index.doc_len
    c_cue = w["cue"] * mass
    top_extra = shares_top + per_top * related_top
    bounded = []
    for place, p in enumerate(pool):
        present = where_of[p].__contains__
        own = sum(compress(idfs, map(present, terms)))
        doc = doc_of[p]
        a = acc[p]
        title = title_get(doc, 0.0)
        # max(0.0, unmatched) as a comparison: max() parses its arguments
        # as keywords in every call (CPython 3.11), some 600 instructions.
        unmatched = 1.0 - own / mass
        base = (
            w_bm25 * a
            + w_title * title
            + c_votes * votes_get(doc, 0)
            + c_relative * a
            + c_first / (1 + place)
            + c_unmatched * (unmatched if unmatched > 0.0 else 0.0)
            + c_fixed
            + c_short * min(SHORT_CAP, short_mean / (doc_len[p] or 1))  # _shortness, inlined
        )
        if pairs:
            base += per_pair * sum(compress(pair_weights, map(present, pairs)))
        if cue_key and present(cue_key):
            base += c_cue
        factor = HEADING if heading[p] else 1.0
        rough = (base + top_extra + per_top * own) / mass * factor
        bounded.append((-rough, p, title, base, own, factor, present, place))
    # By (bound, p) as the tuples compare (pool passages are distinct), no
    # key tuple made for each.
    bounded.sort()
    out: list[Candidate] = []
    best: list[float] = []  # the exact best scores so far, a min-heap
    for neg_rough, p, title, base, own, factor, present, place in bounded:
        full = len(best) == exact
        # The slack keeps a passage whose bound rounds a hair under a tie.
        if full and -neg_rough * (1 + _SLACK) + _SLACK < best[0]:
            break
        if full:
            document, _, _, telling, local = context.exact(index, q, p, acc[p], own_terms)
            # The sentence's telling and local shares are at most the passage's.
            base += (
                w["document"] * document
                + ((w["telling"] + w["telling_sentence"]) * telling + (w["local"] + w["local_sentence"]) * local) * mass
            )
            loose = (base + per_top * (own + related_top)) / mass * factor
            if loose * (1 + _SLACK) + _SLACK < best[0]:
                continue
            if groups:
                top = own
                for words, weight_of in groups:
                    # 0.0 first, not default=0.0 (keyword parsing, above):
                    # the weights are >= 0, so the same best (twice, as max
                    # of a single argument would iterate it).
                    top += max(0.0, 0.0, *map(weight_of, filter(present, words)))
                tight = (base + per_top * top) / mass * factor
                if tight * (1 + _SLACK) + _SLACK < best[0]:
                    continue
        c = _candidate(index, q, p, acc[p], title, mass, plan, place, context)
        out.append(c)
        if len(best) < exact:
            heapq.heappush(best, c.score)
        elif c.score > best[0]:
            heapq.heapreplace(best, c.score)
    return out


@lru_cache(maxsize=4)
def _named_weights(weights: tuple[float, ...]) -> dict[str, float]:
    """The re-ranker's weights by feature name (made once, not per question;
    keyed by the weights, which a test may swap)."""
    return dict(zip(RERANK_FEATURES, weights, strict=True))


def _full_pool(index: Index, q: Question, title_docs, factor, k: int):
    """The first stage, every matching passage scored: (pool, BM25 scores)."""
    walked = getattr(index, "_walked", 0) + index.n_passages
    index._walked = walked
    if index.n_passages >= ARRAYS_MIN and walked > ARRAYS_AFTER:
        np = _numpy()
        if np is not None:
            memo = _memo(index, "_related_arrays", RELATED_MEMO)
            return firststage.pool(np, index, q, title_docs, W_TITLE, factor, k, memo)
    acc = index.scores_weighted(q.terms, q.idf)
    if q.related:
        if len(acc) > BOUNDS_MIN:
            found = _pool_by_bounds(index, q, acc, title_docs, factor, k)
            if found is not None:
                return found
        _add_related(index, q, acc)
    # Headings (a title line, a caption) name a subject but state nothing:
    # they count for a fraction of their score, so prose wins ties and more.
    # The pool's order is (-score, passage), all keys distinct, so the
    # smallest keys are exactly what sorting everything would put first.
    doc_of = index.passage_doc
    title_get = title_docs.get
    if len(acc) > CUT_MIN:
        # Most matching passages cannot be in the pool: a passage scores at
        # most its BM25 plus the best title score. The k best BM25 scores
        # set a bar (their full scores); only passages that could reach it
        # get a full key. The keys compared are the same as below.
        title_max = W_TITLE * max(0.0, 0.0, *title_docs.values())  # IDFs > 0: the same best
        # One walk of every score, not two: the passages within title_max
        # of the k-th best BM25 hold those that set the bar and, unless a
        # heading among them puts the bar below that BM25, every passage
        # that can reach it (bar >= kth gives cut >= floor: the same steps,
        # each rounding monotonically).
        kth = _kth_largest(acc.values(), k)
        floor = kth * (1 - _SLACK) - title_max
        near = [(p, s) for p, s in acc.items() if s >= floor]
        bar = _bar_of(index, near, kth, title_docs, factor, k)
        if bar < kth:
            near = acc.items()
        cut = bar * (1 - _SLACK) - title_max
        keys = [(-(s + W_TITLE * title_get(doc_of[p], 0.0)) * factor[p], p) for p, s in near if s >= cut]
    elif title_docs:
        keys = [(-(s + W_TITLE * title_get(doc_of[p], 0.0)) * factor[p], p) for p, s in acc.items()]
    else:
        keys = [(-s * factor[p], p) for p, s in acc.items()]
    return _smallest(k, keys), acc


def _smallest(k: int, keys: list[tuple[float, int]]) -> list[int]:
    """The passages of the k smallest (key, passage) pairs, in order: what
    heapq.nsmallest gives (all pairs distinct), which runs in Python and
    costs more than C's sort below SORT_MAX pairs (5 us against 1 at 20)."""
    best = sorted(keys)[:k] if len(keys) <= SORT_MAX else heapq.nsmallest(k, keys)
    return [p for _, p in best]


SORT_MAX = 200


# On a corpus of this many passages or more, the first stage moves to
# numpy arrays (natoqa.firststage: the same pool and floats) once questions
# times passages pass ARRAYS_AFTER. What the arrays save a question grows
# with the corpus (0.13 ms at 1,200 passages, 12 ms at 100,000); importing
# numpy costs some 80 ms. So a batch on SQuAD's 1,204 passages switches
# after 500 questions, one on 100,000 after 7, and a single question
# never pays for the import. A batch that can tell it has enough questions
# left (the rest of a file, the lines waiting in a pipe) makes the switch
# after its first questions, before any worker forks (see expect).
ARRAYS_MIN = 1_000
ARRAYS_AFTER = 600_000


def expect(index: Index, left: int) -> None:
    """Told that about `left` more questions are coming (the lines of a
    batch's file or pipe known to wait, a check file's cases): when they
    would take the first stage past ARRAYS_AFTER on a corpus of ARRAYS_MIN
    passages or more, numpy is imported and the switch to the arrays made
    now, not when the count gets there. The import is then due either way
    (as far as the count is right), and the questions before it are spared
    the dict walk. A batch makes it before it forks its workers, once for
    all of them: each would otherwise walk the dicts up to the
    switch and then import numpy for itself (2,000 SQuAD 2.0 questions
    with two workers took a fifth more CPU time that way). So, for the
    same reason, are the corpus's word stems told to text.stem, when
    enough questions are left to repay reading them (_know_stems)."""
    _know_stems(index, left)
    if index.n_passages < ARRAYS_MIN:
        return
    walked = getattr(index, "_walked", 0)
    if walked + left * index.n_passages <= ARRAYS_AFTER:
        return
    np = _numpy()
    if np is None:
        return
    # The arrays every question reads, made once here for every worker.
    firststage.arrays_of(np, index, _heading_factors(index))
    index._walked = max(walked, ARRAYS_AFTER)


# A batch takes the corpus's word stems from the index (text.know_stems)
# when it has at least one question left per this many words: reading them
# costs 0.2 to 0.4 us a word (SQuAD 2.0's 16,975 in 4 to 7 ms), knowing
# them saves a question some 100 us (0.34M instructions).
WORDS_PER_QUESTION = 200


def _know_stems(index: Index, left: int) -> None:
    """Tell text.stem the corpus's words and their stems, once per index,
    when the `left` questions to come will ask for enough of them."""
    if getattr(index, "_stems_known", False):
        return
    table = index.word_stems  # read from the cache item by item: the count first
    if left * WORDS_PER_QUESTION < table[0]:
        return
    textmod.know_stems(table[1], table[2])
    index._stems_known = True


def _numpy():
    """numpy, imported on first need (None without it)."""
    global _np
    if _np is False:
        _np = firststage.numpy()
    return _np


_np = False


def _bar(index: Index, acc: dict[int, float], title_docs, factor, k: int) -> float:
    """The k-th best full first-stage score (title and heading factor in)
    among the passages with the k best BM25 scores: a score every passage
    of the pool reaches. (The passages at or above a score are picked by a
    comprehension: a float comparison there costs half what one through
    map(bar.__le__, ...) does, a method-wrapper's call.)"""
    return _bar_of(index, acc.items(), _kth_largest(acc.values(), k), title_docs, factor, k)


def _bar_of(index: Index, items, kth: float, title_docs, factor, k: int) -> float:
    """_bar from `items`, (passage, BM25) pairs holding every passage whose
    BM25 reaches `kth`, the k-th best."""
    doc_of = index.passage_doc
    title_get = title_docs.get
    return _kth_largest([(s + W_TITLE * title_get(doc_of[p], 0.0)) * factor[p] for p, s in items if s >= kth], k)


def _kth_largest(values, k: int) -> float:
    """heapq.nlargest(k, values)[-1] (the smallest of fewer than k): by C's
    sort up to KTH_SORT_MAX values, past them by nlargest's one walk in
    Python (600 floats cost the sort 10% less, 5,000 cost it 85% more)."""
    if len(values) > KTH_SORT_MAX:
        return heapq.nlargest(k, values)[-1]
    ordered = sorted(values)
    return ordered[-k] if k <= len(ordered) else ordered[0]


KTH_SORT_MAX = 1_000


# Above this many matching passages, _full_pool keys only those that can
# reach the pool; above BOUNDS_MIN it first tries _pool_by_bounds.
CUT_MIN = 200
BOUNDS_MIN = 1_000


# _pool_by_bounds looks up at most this many (passage, related word) pairs
# in the relatives' maps; past that, walking their postings is cheaper.
LOOKUPS = 200_000


def _pool_by_bounds(index: Index, q: Question, acc: dict[int, float], title_docs, factor, k: int):
    """_full_pool's pool and scores without walking the relatives' postings,
    or None when that cannot be shown to give the same pool.

    A word's relatives add at most the largest of their weights. When the
    k-th best score from the question's own terms beats what the relatives
    could add to a passage holding none of those terms, only passages
    holding some can enter the pool, and only those close enough to the bar
    that their relatives could lift them over it: their relatives are
    looked up one by one, added in _add_related's order, so every float is
    the one the full walk gives.
    """
    if len(acc) < k:
        return None  # passages with relatives only will fill the pool
    bounds = [max(w * _max_weight(index, r) for r, w, _ in relatives) for _, relatives in q.related]
    extra = sum(bounds) * (1 + _SLACK)
    title_max = W_TITLE * max(0.0, 0.0, *title_docs.values())  # IDFs > 0: the same best
    doc_of = index.passage_doc
    title_get = title_docs.get
    bar = _bar(index, acc, title_docs, factor, k) * (1 - _SLACK)
    if extra + title_max >= bar:
        return None
    cut = bar - extra - title_max
    survivors = [p for p, s in acc.items() if s >= cut]
    if len(survivors) * len(q.related) > LOOKUPS:
        return None
    # What _add_related would add to each survivor, added in its order: a
    # word's best relative there, unless the passage has the word itself.
    # Each relative's weights are a map kept per relative; survivors and
    # map meet by C-level membership tests over the smaller of the two.
    scores = dict(zip(survivors, map(acc.__getitem__, survivors), strict=True))
    survivor_set = frozenset(survivors)
    for term, relatives in q.related:
        own = index.placed(term) if term else frozenset()
        best: dict[int, float] = {}
        for r, w, _ in relatives:
            weights = _weights_map(index, r)
            if len(weights) < len(survivor_set):
                hits = survivor_set.intersection(weights)
            else:
                hits = filter(weights.__contains__, survivors)
            for p in hits:
                if p in own:
                    continue
                wt = w * weights[p]
                v = best.get(p)
                best[p] = wt if v is None else max(v, wt)
        for p, v in best.items():
            scores[p] = scores[p] + v
    # Relatives only add: the k passages that set the bar still reach it,
    # so a survivor that cannot reach it even with the best title score is
    # not in the pool (its key is never needed).
    reach = bar - title_max
    keys = [(-(s + W_TITLE * title_get(doc_of[p], 0.0)) * factor[p], p) for p, s in scores.items() if s >= reach]
    return _smallest(k, keys), scores


def _max_weight(index: Index, term: str) -> float:
    """The largest tf weight in a term's postings (memoized)."""
    memo = _memo(index, "_max_weight", WORDS_MEMO)
    found = memo.get(term)
    if found is None:
        found = memo.put(term, max(index.postings[term].weights, default=0.0))
    return found


# The bar of _full_pool is lowered by this share, so a sum rounded
# differently never drops a passage that ties.
_SLACK = 1e-9


def _heading_factors(index: Index) -> list[float]:
    """Each passage's share of its first-stage score (HEADING for headings)."""
    try:
        return index._heading_factors
    except AttributeError:
        index._heading_factors = [HEADING if h else 1.0 for h in index.heading]
        return index._heading_factors


def _add_related(index: Index, q: Question, acc: dict[int, float]) -> None:
    """A word's best relative adds to a passage that lacks the word itself."""
    get = acc.get
    for term, relatives in q.related:
        found = _related_postings(index, term, relatives)
        # acc[p] = acc.get(p, 0.0) + v for each of the word's passages: by
        # one zip of C iterators, or for a long list by merge_into.
        if len(found) < MERGE_MIN:
            acc.update(zip(found, map(add, map(get, found, repeat(0.0)), found.values())))  # noqa: B905
        else:
            merge_into(acc, found, add)


# The most (passage, weight) pairs _related_postings keeps: a bound on its
# memory on a large corpus, where a common relative reaches most passages.
RELATED_MEMO = 2_000_000


def _related_postings(index: Index, term: str, relatives) -> dict[int, float]:
    """Passage -> weight: for each passage lacking `term`, the best weight
    of its relatives there. A pure function of the word and its weighted
    relatives over a fixed index, so it is memoized on them: questions
    share their words far more often than they repeat. (Read, never
    changed: _add_related merges it into a question's scores.)"""
    key = (term, relatives)
    memo = _memo(index, "_related_memo", RELATED_MEMO)
    found = memo.get(key)
    if found is not None:
        return found
    postings = index.postings
    # The first relative's weights go in whole (a C-level build); later
    # ones replace a weight only where they beat it: best[p] =
    # max(best.get(p, 0.0), w * tf weight) (index.accumulate).
    best: dict[int, float] = {}
    for r, w, _ in relatives:
        listing = postings[r]
        best = accumulate(best, listing.ids, w, listing.weights, max)
    # Set membership over the word's passages, not a look into every
    # passage's sentence map; the others keep their order.
    if term:
        for p in best.keys() & index.placed(term):
            del best[p]
    return memo.put(key, best, len(best))


# The most (passage, weight) pairs _weights_map keeps in all.
WEIGHTS_MEMO = 2_000_000


def _weights_map(index: Index, term: str) -> dict[int, float]:
    """A term's tf weights as a map from passage (memoized per term, a pure
    function of the index; cleared past WEIGHTS_MEMO pairs)."""
    memo = _memo(index, "_weights_maps", WEIGHTS_MEMO)
    found = memo.get(term)
    if found is None:
        postings = index.postings[term]
        found = memo.put(term, dict(zip(postings.ids, postings.weights, strict=True)), len(postings.ids))
    return found


def _memo(index: Index, name: str, limit: int) -> Memo:
    """The index's memo `name`, made on first use: the index and the
    lexicon are fixed, so what is worked out from them once stays true."""
    memo = getattr(index, name, None)
    if memo is None:
        memo = Memo(limit)
        setattr(index, name, memo)
    return memo


def _plan(q: Question) -> tuple:
    """The question's terms and relatives as _candidate reads them, made
    once per question: per related word, its relatives' words in order and
    each one's weight (the largest, should a word come twice)."""
    related = []
    for term, relatives in q.related:
        weight: dict[str, float] = {}
        for r, w, _ in relatives:
            if w > weight.get(r, -1.0):
                weight[r] = w
        related.append((term, tuple(weight), weight))
    return tuple(zip(q.terms, q.idf)), tuple(related)  # noqa: B905


class _Pool:
    """What the re-ranker knows of a question's whole pool: each document's
    passages in it, the best BM25, the question's telling weight, and a
    memo of each document's local weights and share (see local)."""

    __slots__ = (
        "votes",
        "size",
        "top_bm25",
        "telling",
        "telling_terms",
        "telling_weights",
        "terms",
        "wanted",
        "locals",
        "exacts",
    )

    def __init__(self, index: Index, q: Question, pool, acc) -> None:
        # Counted by C (a loop here was a seed question's 170 opcodes).
        self.votes: dict[int, int] = Counter(map(index.passage_doc.__getitem__, pool))
        self.size = len(pool) or 1
        self.top_bm25 = (max(map(acc.__getitem__, pool)) if pool else 0.0) or 1.0
        total = 0.0
        for _, w in q.telling:
            total += w
        self.telling = total or 1.0
        self.telling_terms, self.telling_weights = tuple(zip(*q.telling)) or ((), ())  # noqa: B905
        self.terms = q.terms
        self.wanted = frozenset(q.terms)  # a set: tested once per sentence term (see _closeness)
        self.locals: dict[int, tuple] = {}
        # Each passage's exact features, worked out for its bound and read
        # again when it is scored.
        self.exacts: dict[tuple[int, float], tuple[float, ...]] = {}

    def local(self, index: Index, p: int, own_terms) -> tuple[float, tuple[float, ...], float]:
        """(total, weights, document share) for p's document: the question's
        own terms weighted by their IDF among the passages of the document
        (Lucene's form, as index.lucene_idf; `weights` is parallel to the
        question's terms) and the sum of those weights, for a word every
        passage of the document uses tells its passages apart no better
        than a stopword; and the IDF of the own terms some passage of the
        document holds. Memoized per document: both come from the same
        counts, looked up once."""
        doc = index.passage_doc[p]
        found = self.locals.get(doc)
        if found is None:
            lo, hi = _document_range(index, p)
            n = hi - lo
            counts = _memo(index, "_count_memo", COUNT_MEMO)
            weights = []
            total = 0.0
            share = 0.0
            for term, idf in own_terms:
                # _count_in's memo read here, its call made only on a miss.
                count = counts.get((term, lo))
                if count is None:
                    count = _count_in(index, term, lo, hi)
                w = lucene_idf(n, count)
                weights.append(w)
                total += w
                if count:
                    share += idf
            found = self.locals[doc] = (total or 1.0, tuple(weights), share)
        return found

    def telling_share(self, present) -> float:
        """The telling weight of the question's words that `present` holds
        (summed in the question's order by C iterators; "" is never present)."""
        return sum(compress(self.telling_weights, map(present, self.telling_terms)), 0.0)

    def exact(self, index: Index, q: Question, p: int, bm25: float, own_terms) -> tuple[float, ...]:
        """(document share, votes, relative BM25, telling share, local
        share): features known before a passage is scored, so its bound
        holds them exactly."""
        found = self.exacts.get((p, bm25))
        if found is not None:
            return found
        present = index.where[p].__contains__
        total, weights, document = self.local(index, p, own_terms)
        # Summed by C iterators in the terms' order: the same floats as a loop.
        local = sum(compress(weights, map(present, self.terms)), 0.0)
        found = self.exacts[(p, bm25)] = (
            document,
            self.votes.get(index.passage_doc[p], 0) / self.size,
            bm25 / self.top_bm25,
            self.telling_share(present) / self.telling,
            local / total,
        )
        return found


def _candidate(
    index: Index, q: Question, p: int, bm25: float, title: float, mass: float, plan=None, first: int = 0, pool=None
) -> Candidate:
    """Pool passage p scored: its best sentence and the re-ranking score,
    `first` its place in the first stage's pool, `pool` its _Pool."""
    where = index.where[p]
    get = where.get
    n = index.sentence_counts[p] or 1
    weights = [0.0] * n
    own_terms, related = plan or _plan(q)
    held = 0.0  # the passage's matched IDF: each word once, else its best relative
    holding = []  # (IDF, sentences) of each own term the passage holds, for _pair
    for term, idf in own_terms:
        found = get(term)
        if found:
            held += idf
            holding.append((idf, found))
            for i in found:
                weights[i] += idf
    present = where.__contains__
    for term, words, weight in related:
        own = get(term, ()) if term else ()
        best: dict[int, float] = {}
        # Only the relatives this passage holds (filtered in C): the others
        # add nothing. A sentence takes its best relative; ties add the same.
        top = 0.0
        for r in filter(present, words):
            w = weight[r]
            if w > top:
                top = w
            for i in where[r]:
                if w > best.get(i, 0.0) and i not in own:
                    best[i] = w
        if not own:
            held += top
        # Only the sentences a relative reached: adding 0.0 elsewhere
        # would change nothing.
        for i, w in best.items():
            weights[i] += w
    phrase = [0.0] * n
    bigram = 0.0
    for key, w in q.bigrams:
        found = where.get(key)
        if found:
            bigram += w
            for i in found:
                phrase[i] += w
    # A sentence that holds a phrase of the wanted kind (a number for "how
    # many") can answer; one that only repeats the question's words cannot.
    cue = [0.0] * n
    wanted = shortanswer.WANTED.get(q.kind)
    if wanted:
        for i in where.get(KIND_KEY + wanted, ()):
            cue[i] = W_KIND * mass
    best, best_value, best_nb = 0, -1.0, 0.0
    for i in range(n):
        nb = (weights[i - 1] if i else 0.0) + (weights[i + 1] if i + 1 < n else 0.0)
        value = weights[i] + W_BIGRAM * phrase[i] + cue[i] + W_NEIGHBOUR * nb
        if value > best_value:
            best, best_value, best_nb = i, value, nb
    sentence_weight = weights[best] + W_BIGRAM * phrase[best] + cue[best]
    if pool is None:
        pool = _Pool(index, q, (p,), {p: bm25})
    document, votes, relative, telling, local = pool.exact(index, q, p, bm25, own_terms)
    sentences = index.sentences[p]
    terms = sentences[best].terms if sentences else ()
    holds = frozenset(terms).__contains__
    local_total, local_weights, _ = pool.local(index, p, own_terms)
    # Summed in the terms' order by reduce, a loop's floats on any Python
    # (sum's are compensated from 3.12 on).
    local_sentence = reduce(add, compress(local_weights, map(holds, pool.terms)), 0.0)
    proximity, density = _closeness(terms, pool.wanted)
    unmatched = 1.0 - held / mass
    features = (
        bm25 / mass,
        title / mass,
        weights[best] / mass,
        phrase[best] / mass,
        1.0 if cue[best] else 0.0,
        best_nb / mass,
        held / mass,
        bigram / mass,
        proximity * weights[best] / mass,
        _pair(holding, best, n) / mass,
        1.0 / (1 + first),
        document / mass,
        votes,
        relative,
        telling,
        pool.telling_share(holds) / pool.telling,
        local,
        local_sentence / local_total,
        density * weights[best] / mass,
        unmatched if unmatched > 0.0 else 0.0,  # max(0.0, unmatched), without its call
        1.0 / (1 + best),
        _shortness(index, p),
    )
    # The weighted sum in C, added in the features' order as a loop would
    # (RERANK's length is checked where _named_weights pairs it with the names).
    score = reduce(add, map(mul, RERANK, features), 0.0)
    if index.heading[p]:
        score *= HEADING
    # Positional: keyword parsing costs a call several times over.
    return Candidate(p, score, bm25, title, best, sentence_weight, bigram, best_nb, tuple(weights), features)


def _shortness(index: Index, p: int) -> float:
    """Passage p's "short" feature: the corpus's mean passage length (in
    terms) over its own, at most SHORT_CAP. Per passage, when asked: a
    table of every passage's cost 13 ms a process at 100,000 passages."""
    return min(SHORT_CAP, (index.avgdl or 1.0) / (index.doc_len[p] or 1))


def _closeness(terms, wanted) -> tuple[float, float]:
    """(proximity, density) of a sentence's terms: how close the question's
    own terms (`wanted`) stand in it, (k - 1) / (w - 1) for the k distinct
    terms it holds and the shortest run of its terms holding them all (w
    terms long), 0 below two terms; and the share of its terms that are
    the question's. The hits are counted in C, and listed only for a
    sentence with two terms or more to place."""
    count = sum(map(wanted.__contains__, terms))
    if not count:
        return 0.0, 0.0
    density = count / len(terms)
    k = len(wanted.intersection(terms)) if count > 1 else 1
    if k < 2:
        return 0.0, density
    hits = [(pos, terms[pos]) for pos in compress(range(len(terms)), map(wanted.__contains__, terms))]
    # The shortest window of hits holding all k terms (two pointers).
    counts: dict[str, int] = {}
    have, lo, width = 0, 0, len(terms)
    for pos, t in hits:
        counts[t] = counts.get(t, 0) + 1
        if counts[t] == 1:
            have += 1
        while have == k:
            start, first = hits[lo]
            if pos - start + 1 < width:
                width = pos - start + 1
            counts[first] -= 1
            if not counts[first]:
                have -= 1
            lo += 1
    return (k - 1) / (width - 1), density


def _pair(holding, best: int, n: int) -> float:
    """The IDF of the question's own terms that sentence `best` and its
    better neighbour hold between them (each term once); `holding` is
    (IDF, sentences) for each own term the passage holds, in order."""
    value = 0.0
    for j in (best - 1, best + 1):
        if j < 0 or j >= n:
            continue
        total = 0.0
        for idf, found in holding:
            if best in found or j in found:
                total += idf
        if total > value:
            value = total
    if not value:
        for idf, found in holding:
            if best in found:
                value += idf
    return value


def pool_features(index: Index, q: Question, k: int = CANDIDATES) -> list[tuple[int, tuple[float, ...]]]:
    """(passage, features x its heading factor) for each of the first
    stage's k pool passages, in pool order: what the re-ranker is fitted on
    (bench/tools/rerank_fit.py)."""
    mass = q.mass or 1.0
    title_docs: dict[int, float] = {}
    for term, idf in zip(q.terms, q.idf, strict=False):
        for doc in index.title_postings.get(term, ()):
            title_docs[doc] = title_docs.get(doc, 0.0) + idf
    pool, acc = _full_pool(index, q, title_docs, _heading_factors(index), k)
    plan = _plan(q)
    context = _Pool(index, q, pool, acc)
    out = []
    for place, p in enumerate(pool):
        c = _candidate(index, q, p, acc[p], title_docs.get(index.passage_doc[p], 0.0), mass, plan, place, context)
        factor = HEADING if index.heading[p] else 1.0
        out.append((p, tuple(factor * x for x in c.features)))
    return out


def confidence(index: Index, q: Question, c: Candidate) -> float:
    """How much of the question the best passage and its best sentence
    answer, from 0 to 1.

    The share of the question's telling weight the passage holds, plus
    W_CONF_SENTENCE x the share its best sentence holds (an answer states
    the question's words together; an unrelated passage matches them here
    and there), over 1 + W_CONF_SENTENCE. A word missing from the sentence
    whose near relative (a synonym, a derived form) is there counts in full
    for the sentence; missing from the passage, at RELATED_CONFIDENCE for
    the passage, or else at CONF_DOCUMENT when the passage's document uses
    the word elsewhere. A far relative, looser, counts at CONF_FAR in the
    sentence only. The question's weight is enlarged by CONF_PRIOR (short
    questions need more), and words of the document's title add
    W_CONF_TITLE of their weight. Summed in the question's word order.
    """
    total = 0.0
    for _, w in q.telling:
        total += w
    if not total:
        return 1.0 if q.terms else 0.0
    p = c.passage
    present = index.where[p]
    sentences = index.sentences[p]
    in_sentence = set(sentences[c.sentence].terms) if sentences else set()
    doc = index.passage_doc[p]
    lo, hi = _document_range(index, p)
    held = 0.0
    titled = 0.0
    related_of = q.related_of or (-1,) * len(q.telling)
    for (term, w), k in zip(q.telling, related_of):  # noqa: B905
        # The tests on `near` by C iterators and set methods: in CPython
        # 3.11 a comprehension is a function made and called each time.
        if k >= 0:
            relatives = q.related[k][1]
            near = [r for r, _, kind in relatives if kind == "near"]
        else:
            relatives = near = ()
        if term and term in present:
            held += w
        elif any(map(present.__contains__, near)):
            held += RELATED_CONFIDENCE * w
        elif term and _in_passages(index, term, lo, hi):
            held += CONF_DOCUMENT * w
        if (term and term in in_sentence) or not in_sentence.isdisjoint(near):
            held += W_CONF_SENTENCE * w
        elif relatives and any(r in in_sentence for r, _, kind in relatives if kind == "far"):
            held += W_CONF_SENTENCE * CONF_FAR * w
        if term and _in_title(index, term, doc):
            titled += w
    total += CONF_PRIOR
    value = held / (total * (1.0 + W_CONF_SENTENCE)) + W_CONF_TITLE * titled / total
    return value if value < 1.0 else 1.0  # min(1.0, value), without its call


def may_answer(index: Index, q: Question) -> bool:
    """Whether some passage could answer the question with confidence (see
    confidence_bound): a question refused here would be refused after ranking."""
    return confidence_bound(index, q) >= MIN_CONFIDENCE


def confidence_bound(index: Index, q: Question) -> float:
    """The most `confidence` any passage can give the question: its value
    for a passage, best sentence and title holding every question word the
    corpus uses, or else the word's relatives. No passage holds a word the
    corpus lacks, RELATED_CONFIDENCE, CONF_DOCUMENT and CONF_FAR are at
    most 1, and the shares are added in `confidence`'s order, so no float
    sum comes out smaller."""
    total = 0.0
    for _, w in q.telling:
        total += w
    if not total:
        return 1.0  # as confidence, for a question with terms
    titles = index.title_postings
    held = 0.0
    titled = 0.0
    related_of = q.related_of or (-1,) * len(q.telling)
    for (term, w), k in zip(q.telling, related_of):  # noqa: B905
        relatives = q.related[k][1] if k >= 0 else ()
        near = "near" in map(_KIND, relatives)
        # A telling term is a corpus term (the word's own or its stand-in), or "".
        if term:
            held += w
        elif near:
            held += RELATED_CONFIDENCE * w
        if term or near:
            held += W_CONF_SENTENCE * w
        elif relatives:
            held += W_CONF_SENTENCE * CONF_FAR * w
        if term and titles.get(term):
            titled += w
    total += CONF_PRIOR
    value = held / (total * (1.0 + W_CONF_SENTENCE)) + W_CONF_TITLE * titled / total
    return value if value < 1.0 else 1.0  # min(1.0, value), without its call


def _document_range(index: Index, p: int) -> tuple[int, int]:
    """The run of consecutive passages [lo, hi) around p that belong to p's
    document: all of them, as a corpus lists a document's passages in a row
    (memoized per document)."""
    try:
        memo = index._document_ranges
    except AttributeError:
        memo = index._document_ranges = {}
    doc_of = index.passage_doc
    doc = doc_of[p]
    found = memo.get(doc)
    if found is None or not found[0] <= p < found[1]:
        lo = hi = p
        while lo > 0 and doc_of[lo - 1] == doc:
            lo -= 1
        while hi + 1 < len(doc_of) and doc_of[hi + 1] == doc:
            hi += 1
        found = memo[doc] = (lo, hi + 1)
    return found


def _in_passages(index: Index, term: str, lo: int, hi: int) -> bool:
    """Whether one of the passages [lo, hi) holds the term."""
    return _count_in(index, term, lo, hi) > 0


# The most (term, document) counts _count_in remembers.
COUNT_MEMO = 1_000_000


def _count_in(index: Index, term: str, lo: int, hi: int) -> int:
    """How many of the passages [lo, hi), one document's (see
    _document_range), hold the term: memoized per term and document, as
    the re-ranker and the confidence ask it of every pool passage."""
    memo = _memo(index, "_count_memo", COUNT_MEMO)
    key = (term, lo)
    found = memo.get(key)
    if found is None:
        postings = index.postings.get(term)
        # `is not None`, not the list's __bool__ (a Python call): an empty
        # list counts 0 either way.
        ids = postings.ids if postings is not None else ()
        found = memo.put(key, bisect.bisect_left(ids, hi) - bisect.bisect_left(ids, lo))
    return found


def _in_title(index: Index, term: str, doc: int) -> bool:
    """Whether the document's title holds the term (title_postings lists
    document numbers in increasing order)."""
    docs = index.title_postings.get(term)
    if not docs:
        return False
    i = bisect.bisect_left(docs, doc)
    return i < len(docs) and docs[i] == doc


TOO_LITTLE = "the best passage matches too little of the question"


def ask(index: Index, question: str, top: int = 1, explain: bool = False) -> Result:
    """Answer one question with up to `top` quotes, best first."""
    q = analyse(index, question)
    if not q.terms and not q.related:
        if q.mass:
            return Result(question, False, (), "no passage shares a word with the question")
        return Result(question, False, (), "no searchable words in the question")
    # A question with terms or relatives always has a pool (each has
    # postings), so this refusal is the one ranking would end in. With
    # --explain ranking gives the refusal its number, the best passage's
    # confidence, which the bound is not.
    if not explain and not may_answer(index, q):
        return Result(question, False, (), TOO_LITTLE)
    # The answers shown, and the runner-up --explain names, must be exact;
    # the last answer's runner-up is one past `top`, deeper than CANDIDATES
    # from top = CANDIDATES on (the answers are the same: see rank).
    depth = top + 1 if explain else top
    ranked = rank(index, q, depth if depth > CANDIDATES else CANDIDATES, exact=depth)
    if not ranked:
        return Result(question, False, (), "no passage shares a word with the question")
    conf = confidence(index, q, ranked[0])
    if conf < MIN_CONFIDENCE:
        # With --explain an abstention gives its numbers, as an answer does.
        why = f" (confidence {conf:.4f} in the best passage, below {MIN_CONFIDENCE:g})"
        return Result(question, False, (), TOO_LITTLE + why if explain else TOO_LITTLE)
    answers = []
    for rank_no, c in enumerate(ranked[:top], 1):
        answer = _answer(index, q, c, rank_no)
        if explain:
            runner_up = ranked[rank_no] if rank_no < len(ranked) else None
            answer = replace(answer, explain=explain_answer(index, q, c, runner_up))
        answers.append(answer)
    return Result(question, True, tuple(answers), "", conf)


def _answer(index: Index, q: Question, c: Candidate, rank_no: int) -> Answer:
    passage = index.corpus.passages[c.passage]
    present = index.where[c.passage]
    held = list(map(present.__contains__, q.terms))
    matched = tuple(compress(q.terms, held))
    coverage = sum(compress(q.idf, held)) / (q.mass or 1.0)
    first, last = _quote_sentences(index, q, c)
    sentences = index.sentences[c.passage]
    if first is None:
        start, end = 0, len(passage.text)
    else:
        start, end = sentences[first].start, sentences[last].end
    # A quote never starts or ends in white space, whatever the splitter gave.
    while start < end and passage.text[start].isspace():
        start += 1
    while end > start and passage.text[end - 1].isspace():
        end -= 1
    bounds = _bounds(passage.text, start, end, q, _known_terms(passage.text, sentences, first, last, start, end))
    short = shortanswer.pick(index, q, c.passage, first, last, bounds)
    if bounds:
        start, end = bounds
    # Positional, in the fields' order (rank, score, document, title, path,
    # quote, passage, coverage, matched, answer): keyword parsing costs a
    # call several times over.
    return Answer(
        rank_no,
        round(c.score, 4),
        passage.document,
        passage.title,
        passage.path,
        span_in_passage(passage.text, passage.start_line, start, end),
        PassageRef(passage.text, passage.start_line, passage.end_line),
        round(coverage, 4),
        matched,
        None if short is None else span_in_passage(passage.text, passage.start_line, short[0], short[1]),
    )


# A quote longer than this is cut to the run of clauses that holds the most
# of the question (and the short answer), within this length.
LONG_QUOTE = 300
TRIM_SHORT = 0.0  # the short answer's worth in that choice, a share of the question's mass
_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]\s+|\s+[\u2014\u2013-]{1,2}\s+|\.\s+")


_TERMS = attrgetter("terms")


def _known_terms(text: str, sentences, first: int | None, last: int | None, start: int, end: int):
    """The index's terms of sentences first..last, quoted as text[start:end]:
    the quote's own stems when it cuts no token (else None)."""
    if first is None or not (textmod.uncut(text, start) and textmod.uncut(text, end)):
        return None
    return tuple(chain.from_iterable(map(_TERMS, sentences[first : last + 1])))


def _bounds(text: str, start: int, end: int, q: Question, known=None) -> tuple[int, int] | None:
    """The trimmed quote's offsets, or None when the quote is short enough:
    the best run of whole clauses (_trim), then widened word by word, a word
    after and a word before in turn, while it stays within LONG_QUOTE (an
    answer often ends the clause after the question's words). `known` are
    the quote's terms when the index has them (_known_terms)."""
    if end - start <= LONG_QUOTE:
        return None
    a, b = _trim(text, start, end, q, None, known)
    a, b = _widen(text, a, b, start, end)
    if b <= a:
        # Not one word fits (a line with no white space): the quote's first
        # LONG_QUOTE characters, cut mid-word, still the document's text.
        return start, start + LONG_QUOTE
    return a, b


_WORD = re.compile(r"\s*\S+")


def _widen(text: str, a: int, b: int, start: int, end: int) -> tuple[int, int]:
    """text[a:b] grown by whole words inside text[start:end] up to LONG_QUOTE."""
    turn, stuck = 0, 0
    while stuck < 2:
        moved = False
        if turn == 0 and b < end:
            m = _WORD.match(text, b, end)
            if m and m.end() - a <= LONG_QUOTE:
                b, moved = m.end(), True
        elif turn == 1 and a > start:
            j = a
            while j > start and text[j - 1].isspace():
                j -= 1
            while j > start and not text[j - 1].isspace():
                j -= 1
            if j < a and b - j <= LONG_QUOTE:
                a, moved = j, True
        stuck = 0 if moved else stuck + 1
        turn ^= 1
    # A quote ends on a word, not on the comma or colon after it.
    while b > a and (text[b - 1].isspace() or text[b - 1] in ",;:"):
        b -= 1
    return a, b


def _trim(text: str, start: int, end: int, q: Question, short, known=None) -> tuple[int, int]:
    """The best run of whole clauses of text[start:end], at most LONG_QUOTE long."""
    cuts, spans = _clauses(text, start, end, known)
    weights = dict(zip(q.terms, q.idf))  # noqa: B905
    for _, relatives in q.related:
        for r, w, _ in relatives:
            weights.setdefault(r, w)
    terms = [(pos, t) for pos, t in spans if t in weights]
    # In text order: the terms of a run [a, b) are a slice, found by bisection.
    positions, names = list(map(_FIRST, terms)), list(map(_SECOND, terms))
    if len(cuts) < 3:
        return _words_run(text, start, end, positions, names, weights)
    best, best_key = (start, end), None
    for i in range(len(cuts) - 1):
        for j in range(i + 1, len(cuts)):
            a, b = cuts[i], cuts[j]
            while b > a and (text[b - 1].isspace() or text[b - 1] in ",;:"):
                b -= 1
            if b - a > LONG_QUOTE:
                break
            holds_short = short is not None and a <= short[0] and short[1] <= b
            # Distinct question words held; then the longer run, which
            # keeps more context around the answer.
            # Summed in first-seen order, never a set's: float sums must not
            # depend on the interpreter's hash seed.
            held = names[bisect.bisect_left(positions, a) : bisect.bisect_left(positions, b)]
            weight = sum(map(weights.__getitem__, dict.fromkeys(held)))
            key = (weight + TRIM_SHORT * holds_short * (q.mass or 1.0), b - a)
            if best_key is None or key > best_key:
                best, best_key = (a, b), key
    if best_key is None:
        # Every clause is longer than a quote may be.
        return _words_run(text, start, end, positions, names, weights)
    return best


_WORD_END = re.compile(r"\S*")


def _words_run(text: str, start: int, end: int, positions, names, weights) -> tuple[int, int]:
    """For a sentence with no clause short enough to quote (a run-on line,
    a table flattened into one line): the run of whole words from one
    question word to another, within LONG_QUOTE, holding the most distinct
    question words (the first such run), which _widen then grows. With no
    question word in it, the sentence's first words."""
    best, best_key = None, None
    j = 0
    for i, a in enumerate(positions):
        while a > start and not text[a - 1].isspace():
            a -= 1  # from the start of the word ("mail" of "e-mail")
        j = max(j, i)
        while j + 1 < len(positions) and _WORD_END.match(text, positions[j + 1], end).end() - a <= LONG_QUOTE:
            j += 1
        b = _WORD_END.match(text, positions[j], end).end()
        if b - a > LONG_QUOTE:
            continue  # a single word longer than a quote
        key = sum(map(weights.__getitem__, dict.fromkeys(names[i : j + 1])))
        if best_key is None or key > best_key:
            best, best_key = (a, b), key
    if best is None:
        return start, start
    return best


@lru_cache(maxsize=4096)
def _clauses(text: str, start: int, end: int, known=None) -> tuple[tuple[int, ...], tuple[tuple[int, str], ...]]:
    """Where text[start:end]'s clauses begin (and its end), and its terms
    with their offsets in text: what _trim reads, the same for every
    question the quote answers (memoized; a passage's text hashes once).
    `known`, the quote's terms from the index, spare stemming its words."""
    cuts = [start]
    for m in _CLAUSE_END.finditer(text, start, end):
        if start < m.end() < end:
            cuts.append(m.end())
    cuts.append(end)
    return tuple(cuts), tuple((pos + start, t) for t, pos, _ in textmod.terms_with_spans(text[start:end], known))


# A neighbour joins the quote when it brings question terms the best
# sentence lacks, worth this share of the question.
JOIN_SHARE = 0.1


def _quote_sentences(index: Index, q: Question, c: Candidate):
    """The best sentence, or it and one neighbour: (first, last) numbers."""
    sentences = index.sentences[c.passage]
    if not sentences:
        return None, None
    best = c.sentence
    first = last = best
    weights = dict(zip(q.terms, q.idf))  # noqa: B905
    own = set(sentences[best].terms)

    def gain(i: int) -> float:
        if i < 0 or i >= len(sentences):
            return 0.0
        return sum(weights[t] for t in dict.fromkeys(sentences[i].terms) if t in weights and t not in own)

    before, after = gain(best - 1), gain(best + 1)
    if (after if after > before else before) / (q.mass or 1.0) >= JOIN_SHARE:
        if after >= before:
            last = best + 1
        else:
            first = best - 1
    return first, last


def span_in_passage(passage_text: str, first_line: int, start: int, end: int) -> Span:
    """The Span of passage_text[start:end] in document coordinates."""
    line = first_line + passage_text.count("\n", 0, start)
    line_start = passage_text.rfind("\n", 0, start) + 1
    last = end - 1
    end_line = first_line + passage_text.count("\n", 0, last)
    end_line_start = passage_text.rfind("\n", 0, last) + 1
    # Positional (text, start_line, start_col, end_line, end_col), as Answer's.
    return Span(passage_text[start:end], line, start - line_start + 1, end_line, last - end_line_start + 1)


def _stood_in_for(index: Index, q: Question, term: str) -> str:
    """The question's word that corpus term `term` stands in for (see
    _stand_in): the first the corpus lacks whose stand-in it is."""
    stop = textmod.stopwords()
    for word in q.words:
        if word not in stop:
            stem = textmod.stem(word)
            if stem not in index.idf and _stand_in(index, stem) == term:
                return word
    return ""


def explain_answer(index: Index, q: Question, c: Candidate, runner_up: Candidate | None) -> dict:
    """The numbers behind an answer: per-term BM25 contributions, the re-ranking
    parts, the sentence choice and the short answer's reason."""
    p = c.passage
    counts: dict[str, int] = {}
    for term in index.passage_terms[p]:
        counts[term] = counts.get(term, 0) + 1
    norm = index.k1 * (1 - index.b + index.b * index.doc_len[p] / (index.avgdl or 1.0))
    rows = []
    for term, idf in zip(q.terms, q.idf, strict=False):
        tf = counts.get(term, 0)
        contribution = idf * tf * (index.k1 + 1) / (tf + norm) if tf else 0.0
        # A stand-in for a word the corpus lacks weighs PARTIAL of its IDF:
        # the IDF shown is the index's, the same in every question, and the
        # row names the word and the weight it counted at.
        own = index.idf[term]
        row = {"term": term, "idf": round(own, 4), "tf": tf, "contribution": round(contribution, 4)}
        if idf != own:
            row["stand_in_for"] = _stood_in_for(index, q, term)
            row["weight"] = round(idf, 4)
        rows.append(row)
    # Lexicon relatives, as _add_related scores them: a word's best relative
    # counts where the passage lacks the word itself.
    related_rows = []
    present = index.where[p]
    for word, (term, relatives) in zip(q.related_words, q.related, strict=False):
        own = bool(term) and term in present
        group = []
        for r, w, kind in relatives:
            tf = counts.get(r, 0)
            contribution = w * tf * (index.k1 + 1) / (tf + norm) if tf and not own else 0.0
            group.append(
                {"for": word, "term": r, "kind": kind, "weight": round(w, 4), "tf": tf, "contribution": contribution}
            )
        best = max(group, key=lambda row: row["contribution"])
        for row in group:
            row["contribution"] = round(row["contribution"], 4) if row is best else 0.0
        related_rows.extend(group)
    sentences = index.sentences[p]
    first, last = _quote_sentences(index, q, c)
    weights = dict(zip(q.terms, q.idf, strict=False))
    related_terms = {r for _, relatives in q.related for r, _, _ in relatives}
    sentence_rows = [
        {
            "index": i + 1,
            "matched": sorted(set(s.terms) & (weights.keys() | related_terms)),
            "weight": round(c.weights[i], 4),
            "chosen": first is not None and first <= i <= last,
        }
        for i, s in enumerate(sentences)
    ]
    out = {
        "score": round(c.score, 4),
        "passage_score": round(c.bm25, 4),
        "title_score": round(c.title, 4),
        "sentence_score": round(c.sentence_weight, 4),
        "bigram_score": round(c.bigram, 4),
        "neighbour_score": round(c.neighbour, 4),
        "question_mass": round(q.mass, 4),
        "confidence": round(confidence(index, q, c), 4),
        "k1": index.k1,
        "b": index.b,
        "passage_length": index.doc_len[p],
        "average_length": round(index.avgdl, 2),
        "terms": rows,
        "related_terms": related_rows,
        "sentences": sentence_rows,
        "rerank_features": {name: round(x, 4) for name, x in zip(RERANK_FEATURES, c.features, strict=True)},
        "rule": (
            "score = the learned weights (RERANK) x the passage's features (rerank_features, most of"
            f" them shares of the question's IDF), x {HEADING} for a heading; the best sentence holds the most"
            f" question IDF, plus {W_BIGRAM} x the weight of question word pairs it repeats, plus {W_KIND} x"
            " the question's mass when it holds a phrase of the kind the question asks for (sentence_score);"
            f" a neighbour joins the quote when it adds at least {JOIN_SHARE:.0%} of the question's weight; a question"
            f" word the passage or sentence lacks counts through its best lexicon relative at {W_NEAR}"
            f" (near) or {W_FAR} (far) of the smaller IDF"
        ),
    }
    bounds = None
    if first is not None:
        text = index.corpus.passages[p].text
        start, end = sentences[first].start, sentences[last].end
        bounds = _bounds(text, start, end, q, _known_terms(text, sentences, first, last, start, end))
        if bounds:
            out["trimmed_to"] = {
                "start": bounds[0],
                "end": bounds[1],
                "rule": (
                    f"quotes over {LONG_QUOTE} characters keep the run of clauses holding the most question"
                    f" weight, widened by whole words up to {LONG_QUOTE} characters"
                ),
            }
    short = shortanswer.explain(index, q, p, first, last, bounds)
    if short:
        out["short_answer"] = short
    if runner_up is not None:
        other = index.corpus.passages[runner_up.passage]
        out["runner_up"] = {
            "path": other.path,
            "start_line": other.start_line,
            "end_line": other.end_line,
            "score": round(runner_up.score, 4),
        }
    return out
