"""The short answer: the phrase of the quote that answers the question.

The question's first words say what kind of answer it wants (who -> a
name, when -> a date, how many -> a number, where -> a place name, what or
which -> a noun phrase). The quote is cut into candidate phrases: runs of
capitalized words, numbers with their unit, dates, and noun chunks (runs of
words that are neither stopwords nor verbs or adverbs, as WordNet's tagged
counts label them in verbs.txt, joined over "of" and "and"). A candidate
that only repeats the question is no answer, and question words at its
edges are trimmed ("NATO Secretary General Jens Stoltenberg" answers "Who
is the NATO Secretary General?" with "Jens Stoltenberg"), except the noun a
what/which question names ("What sea" -> "the Black Sea"). Candidates of
the wanted kind win; among them the one nearest the question's words, where
most of the question's weight gathers, after them rather than before, and
in the same clause. The result is a pair of offsets in the passage text, so
the answer is verbatim by construction.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from itertools import chain, compress
from operator import itemgetter

from natoqa import text as textmod

# Hot zips take no strict= (noqa: B905), for the reason natoqa.index gives.

PERSON, PLACE, DATE, NUMBER, THING = "person", "place", "date", "number", "thing"

_HOW_NUMBER = frozenset("many much long far old large big tall high often fast deep wide heavy few hot cold".split())
_NUMBER_NOUNS = frozenset("percentage percent proportion share fraction number amount population rate size".split())
_SHARE_WORDS = frozenset("share percentage percent proportion fraction".split())
_DATE_NOUNS = frozenset("year years century decade date month day era period".split())
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion dozen half first second third fourth fifth sixth seventh eighth ninth tenth".split()
)
# Words that may sit inside a name ("Bank of England", "Denmark and Spain").
_NAME_GLUE = frozenset("of the and de da von van del la le du y bin ibn al el der den".split())
_YEAR = re.compile(r"1\d{3}|20\d{2}|\d{1,4}s")
_ORDINAL = re.compile(r"\d+(st|nd|rd|th)")
_TOKEN = re.compile(f"[$£€]?{textmod.WORD}+(?:['.,]{textmod.WORD}+)*%?")


def question_kind(words: list[str]) -> str:
    """The kind of answer a question wants, from its lower-cased words."""
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word == "how" and following in _HOW_NUMBER:
            return NUMBER
        if word in ("when",):
            return DATE
        if word in ("who", "whom", "whose"):
            return PERSON
        if word == "where":
            return PLACE
        if word in ("what", "which") and following:
            nxt = words[i + 1 : i + 3]
            if following in _DATE_NOUNS or (len(nxt) > 1 and nxt[1] in ("year", "century", "decade")):
                return DATE
            if following in _NUMBER_NOUNS:
                return NUMBER
            return THING
    return THING


_KIND_WORDS = frozenset("kind type sort form name term".split())


def focus_word(words) -> str | None:
    """The stem of the noun a what/which question asks for ("What sea ..."
    -> "sea", "What kind of disorders" -> "disorder"), or None."""
    stop = textmod.stopwords()
    for i, word in enumerate(words):
        if word in ("what", "which"):
            k = i + 1
            while k < len(words) and (words[k] in _KIND_WORDS or words[k] == "of"):
                k += 1
            if k < len(words) and words[k] not in stop and words[k] not in verbs():
                return textmod.stem(words[k])
            return None
    return None


class Token:
    """One token of a passage: its offsets, its raw text and their analysis
    (see _analysed). natoqa.index reads passages through these."""

    __slots__ = ("start", "end", "raw", "word", "stem", "cap", "num", "stop")

    def __init__(self, start: int, end: int, raw: str, analysed: tuple[str, str, bool, bool, bool]):
        self.start, self.end, self.raw = start, end, raw
        self.word, self.stem, self.cap, self.num, self.stop = analysed


# Each raw token's analysis, computed once: tokenizing is most of the cost.
_ANALYSED: dict[str, tuple[str, str, bool, bool, bool]] = {}
_DIGIT = re.compile(r"\d")


def _word(raw: str) -> str:
    return textmod.normalize_token(raw.lstrip("$£€").rstrip("%"))


def _analysed(raw: str, word: str, stem: str | None = None) -> tuple[str, str, bool, bool, bool]:
    """(word, stem, capitalized, number, stopword) of a raw token, given its
    word (_word); `stem`, when given, is the word's stem, already known."""
    analysed = _ANALYSED.get(raw)
    if analysed is None:
        num = bool(_DIGIT.search(raw)) or word in _NUMBER_WORDS
        if stem is None:
            stem = textmod.stem(word)
        analysed = (word, stem, raw[:1].isupper(), num, word in textmod.stopwords() and not num)
        if len(_ANALYSED) > 500_000:
            _ANALYSED.clear()
        _ANALYSED[raw] = analysed
    return analysed


def _spans(passage_text: str, start: int, end: int, terms=None) -> tuple[list[int], list[int], list[str], list[tuple]]:
    """(starts, ends, raw texts, analyses) of the tokens of text[start:end].
    `terms`, when given, are the index's terms of the same text (see
    _index_stems)."""
    folded = textmod.fold(passage_text[start:end])
    matches = list(_TOKEN.finditer(folded))
    raws = [m.group() for m in matches]
    # Most tokens were met before: the memo's get, without a call per token.
    known = _ANALYSED.get
    analyses = [known(raw) for raw in raws]
    if None in analyses:
        words = [a[0] if a else _word(raw) for a, raw in zip(analyses, raws, strict=True)]
        stems = _index_stems(terms, words) if terms is not None else [None] * len(raws)
        analyses = [
            a or _analysed(raw, word, stem) for a, raw, word, stem in zip(analyses, raws, words, stems, strict=True)
        ]
    return [start + m.start() for m in matches], [start + m.end() for m in matches], raws, analyses


def _index_stems(terms, words) -> list[str | None]:
    """Each token's stem as the index has it, from its word, None for
    stopwords (and for every token when the counts disagree). The index's
    terms are the stems of the tokens whose word is no stopword, in order
    (index._analyse_passage): taken from there, a word never met is not
    stemmed again, and stemming a new word costs more than analysing the
    rest of its token."""
    stop = textmod.stopwords()
    content = [bool(word) and word not in stop for word in words]
    if sum(content) != len(terms):
        return [None] * len(words)
    term = iter(terms)
    return [next(term) if c else None for c in content]


def tokenize(passage_text: str, start: int, end: int) -> list[Token]:
    return [Token(*token) for token in zip(*_spans(passage_text, start, end), strict=True)]


def _gaps(passage_text: str, starts, ends) -> list[str]:
    """The text between each token and the next."""
    return [passage_text[a:b] for a, b in zip(ends, starts[1:], strict=False)]


def _joins(gaps) -> list[bool]:
    """For each token, whether only white space or a hyphen parts it from
    the next: one phrase."""
    return [gap == " " or gap.strip() in ("", "-") for gap in gaps]


def candidates(passage_text: str, tokens: list[Token], phrases: bool = True) -> list[tuple[int, int, str]]:
    """(first token, last token, kind) of every candidate phrase; with
    phrases=False, names, numbers and dates only."""
    joined = _joins(_gaps(passage_text, [t.start for t in tokens], [t.end for t in tokens]))
    return _candidates(
        [t.word for t in tokens],
        [t.cap for t in tokens],
        [t.num for t in tokens],
        [t.stop for t in tokens],
        joined,
        phrases,
    )


def _candidates(words, caps, nums, stops, joined, phrases: bool) -> list[tuple[int, int, str]]:
    """candidates() on the tokens' words, capitals, numbers and stopwords
    as parallel sequences, and _joins."""
    out = []
    n = len(words)
    # Names: runs of capitalized words, glue words allowed inside.
    after = 0
    for i in compress(range(n), caps):
        if i < after or nums[i] or (stops[i] and (i == 0 or not joined[i - 1])):
            continue
        j = i
        while j + 1 < n:
            if caps[j + 1] and not nums[j + 1] and joined[j]:
                j += 1
            elif words[j + 1] in _NAME_GLUE and j + 2 < n and caps[j + 2] and joined[j] and joined[j + 1]:
                j += 2
            else:
                break
        out.append((i, j, "name"))
        after = j + 1
    # Numbers and dates: a run of number words, with a month or a unit.
    after = 0
    for i in compress(range(n), nums):
        if i < after:
            continue
        j = i
        while j + 1 < n and (nums[j + 1] or words[j + 1] in ("and", "to", "or")) and joined[j]:
            j += 1
        while words[j] in ("and", "to", "or"):
            j -= 1
        first = i
        if first > 0 and words[first - 1] in _MONTHS:
            first -= 1
        last = j
        if last + 1 < n and words[last + 1] in _MONTHS:
            last += 1
            if last + 1 < n and nums[last + 1]:
                last += 1
        is_date = (
            first < i
            or last > j
            or any(_YEAR.fullmatch(words[k]) for k in range(i, j + 1))
            or (_ORDINAL.fullmatch(words[j]) and j + 1 < n and words[j + 1] in ("century", "centuries"))
        )
        if is_date:
            if last + 1 < n and words[last + 1] in ("century", "centuries", "bc", "ad", "bce", "ce"):
                last += 1
            out.append((first, last, "date"))
        else:
            out.append((first, last, "number"))
            # With its unit: "5,000 troops", "60% of its land forces".
            unit = last
            while unit + 1 < n and unit - last < 2 and not stops[unit + 1] and not caps[unit + 1]:
                if not joined[unit]:
                    break
                unit += 1
            if unit > last:
                out.append((first, unit, "number"))
        after = j + 1
    # Noun phrases: runs of content words with nothing but space between.
    i = 0
    while phrases and i < n:
        if stops[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not stops[j + 1] and joined[j]:
            j += 1
        out.append((i, j, "phrase"))
        i = j + 1
    return out


# How well a candidate's kind suits the question's kind.
_FIT = {
    PERSON: {"name": 3.0, "phrase": 1.5},
    PLACE: {"name": 3.0, "phrase": 2.5},
    DATE: {"date": 4.0, "number": 1.0},
    NUMBER: {"number": 4.0, "date": 1.0},
    THING: {"phrase": 1.0, "name": 1.2, "number": 0.5, "date": 0.5},
}
# The candidate kind that marks a sentence as able to answer a question kind.
WANTED = {PERSON: "name", PLACE: "name", DATE: "date", NUMBER: "number"}
# Below this a candidate does not stand out and no short answer is given.
MIN_FIT = 0.5

# Scoring weights (tuned on the even half of SQuAD 1.1 dev, bench/quality.py).
W_DISTANCE = 0.1  # per token between the candidate and the nearest question word
W_LENGTH = -0.02  # per token beyond the first: negative, as a longer phrase overlaps more of the answer
# Words that may join two noun chunks into one phrase ("loss of biodiversity").
# A phrase ending in the noun a what/which question names ("What sea" ->
# "the Black Sea") keeps that noun: SQuAD answers include it.
KEEP_FOCUS = True
W_FOCUS = 0.3
# A phrase cut out of one holding question words mostly modifies the
# question's own noun ("Middle" of "Middle Rhine Gorge"), seldom answers it.
W_TRIMMED = 0.3
W_AFTER = 0.1
# Punctuation between a candidate and its nearest question word: another
# clause, seldom the one the question's words are about.
W_CLAUSE = 0.2
_BOUNDARY = re.compile(r"[.;:(),]")
W_MODIFIER = 0.5
# The share of the question's weight within WINDOW tokens of a candidate.
W_GATHER = 0.5
WINDOW = 10
# Each question word inside a candidate: an answer seldom repeats the question.
W_INSIDE = 0.3
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
# Function words the stopword list lacks (it is tuned for ranking): a
# noun phrase cannot run through them either.
_FUNCTION = frozenset(
    "although though unlike whereas whether since unless upon within without among amongst across along "
    "around toward towards beyond despite via per like including etc also however thus therefore hence "
    "yet even either neither onto throughout except besides instead rather whose whom whereby".split()
)
_PHRASE_GLUE = frozenset("of and".split())
_ARTICLES = frozenset("the a an".split())
MAX_JOINS = 1
_CLAUSE_END = re.compile(r"[.!?;:]")
_first, _second = itemgetter(0), itemgetter(1)


@lru_cache(maxsize=1)
def verbs() -> frozenset[str]:
    """Word forms used mostly as verbs or adverbs (verbs.txt, from WordNet)."""
    raw = textmod.data_text("verbs.txt")
    return frozenset(line for line in raw.splitlines() if line and not line.startswith("#"))


def _breaks(words, caps, nums, stops, gaps) -> list[bool]:
    """For each token, whether a noun phrase cannot run through it: a
    stopword, or a verb or adverb (capitalized ones only at a clause start,
    where the capital says nothing)."""
    vb = verbs()
    out = [stop or word in _FUNCTION for word, stop in zip(words, stops, strict=True)]
    # Verbs are few: the hyphen and clause tests run for them alone.
    for k in [k for k, word in enumerate(words) if word in vb]:
        if not out[k] and not nums[k] and not (k and gaps[k - 1] == "-"):
            out[k] = not caps[k] or k == 0 or bool(_CLAUSE_END.search(gaps[k - 1]))
    return out


def _chunks(words, breaks, joined) -> list[tuple[int, int, str]]:
    """Noun-phrase-like chunks: runs of tokens that are neither stopwords nor
    verbs, with nothing but space between; two chunks joined by "of" or "and" also."""
    out = []
    n = len(words)
    runs = []
    i = 0
    while i < n:
        if breaks[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not breaks[j + 1] and joined[j]:
            j += 1
        runs.append((i, j))
        i = j + 1
    for r, (a, b) in enumerate(runs):
        out.append((a, b, "phrase"))
        # Extend over "of" or "and" (and an article after it) into the next
        # run: "destruction of the forest", "black and white". Other
        # prepositions, or more runs, measured no better.
        end = b
        for nxt_a, nxt_b in runs[r + 1 : r + 1 + MAX_JOINS]:
            k = end + 1
            if k >= nxt_a or words[k] not in _PHRASE_GLUE:
                break
            while k + 1 < nxt_a and words[k + 1] in _ARTICLES:
                k += 1
            if k + 1 != nxt_a or not all(joined[end:nxt_a]):
                break
            end = nxt_b
            out.append((a, end, "phrase"))
    return out


# The most quotes whose parts _quote_parts keeps: a bound on its memory.
QUOTE_MEMO = 20_000


class _Quote:
    """What the short answer needs of a quote that does not depend on the
    question. Its tokens are parallel lists, one per attribute of Token:
    cheaper to build and to read than an object per token."""

    __slots__ = (
        "starts",
        "ends",
        "raws",
        "words",
        "stems",
        "caps",
        "nums",
        "stops",
        "gaps",
        "joined",
        "breaks",
        "found",
        "boundaries",
    )

    def __init__(self, passage_text: str, start: int, end: int, terms=None):
        self.starts, self.ends, self.raws, analyses = _spans(passage_text, start, end, terms)
        words, self.stems, caps, nums, stops = ([], [], [], [], []) if not analyses else zip(*analyses, strict=True)
        self.words, self.caps, self.nums, self.stops = words, caps, nums, stops
        self.gaps = gaps = _gaps(passage_text, self.starts, self.ends)
        self.joined = joined = _joins(gaps)
        self.breaks = breaks = _breaks(words, caps, nums, stops, gaps)
        self.found = _candidates(words, caps, nums, stops, joined, phrases=False) + _chunks(words, breaks, joined)
        # Where _BOUNDARY's characters stand, so that "is there one between
        # these offsets" is a bisection, not a regex search per candidate.
        self.boundaries = [m.start() for m in _BOUNDARY.finditer(passage_text, start, end)]


def _quote_parts(index, p: int, passage_text: str, start: int, end: int, sentences=None) -> _Quote:
    """The _Quote of passage p's text[start:end]; `sentences`, when the quote
    is whole sentences, are they. Memoized per quote, as questions about one
    fact share their quote; tokenizing and chunking were over half of a short
    answer's cost."""
    try:
        memo = index._quote_memo
    except AttributeError:
        memo = index._quote_memo = {}
    key = (p, start, end)
    found = memo.get(key)
    if found is None:
        # The sentences' terms are the index's stems of the quote's words
        # when the quote cuts no token, so that its tokens are the passage's.
        terms = None
        if sentences is not None and textmod.uncut(passage_text, start) and textmod.uncut(passage_text, end):
            terms = [term for sentence in sentences for term in sentence.terms]
        found = _Quote(passage_text, start, end, terms)
        if len(memo) >= QUOTE_MEMO:
            memo.clear()
        memo[key] = found
    return found


def _scored(index, q, p: int, first: int | None, last: int | None, bounds=None):
    """Every candidate of the quote, scored, best first, as (score, first
    token, last token, kind, distance), and the quote's token starts and
    ends (offsets in the passage): the one or two candidates read are
    turned into offsets, not all. `bounds`, when given, are the quote's
    (start, end) offsets after trimming."""
    if first is None:
        return [], (), ()
    passage_text = index.corpus.passages[p].text
    sentences = index.sentences[p]
    start, end = bounds or (sentences[first].start, sentences[last].end)
    quote = _quote_parts(index, p, passage_text, start, end, None if bounds else sentences[first : last + 1])
    starts, ends, words, stems, stops = quote.starts, quote.ends, quote.words, quote.stems, quote.stops
    boundaries = quote.boundaries
    n = len(words)
    # A relative standing in for a question word ("concerned" for "worry")
    # repeats the question as much as the word itself.
    relatives = chain.from_iterable(map(_second, q.related))
    asked = set(q.terms).union(map(textmod.stem, q.words), map(_first, relatives))
    # Each token tested against the question once, not once per candidate
    # holding it. The hits are the asked tokens that are no stopwords.
    asked_at = list(map(asked.__contains__, stems))
    hits = [k for k in compress(range(n), asked_at) if not stops[k]]
    # How much of the question surrounds each token: the answer sits where
    # the question's words gather, not next to one stray match.
    idf = dict(zip(q.terms, q.idf))  # noqa: B905
    total = sum(idf.values()) or 1.0
    hit_weight = [(stems[k], idf.get(stems[k], 0.0)) for k in hits]
    gathered_in: dict[tuple[int, int], float] = {}  # per run of hits: candidates share windows
    fit = _FIT[q.kind]
    # "What share / percentage / proportion" asks for a percentage.
    share = not _SHARE_WORDS.isdisjoint(q.words)
    vb = verbs()
    thing = q.kind == THING
    focus = focus_word(q.words) if thing else None
    scored = []
    seen = set()
    for a, b, kind in quote.found:
        weight = fit.get(kind, 0.0)
        if weight <= 0:
            continue
        # Trim question words and glue from the edges of names and phrases.
        if kind in ("name", "phrase"):
            a0, b0 = a, b
            while a <= b and (asked_at[a] or stops[a]):
                a += 1
            keep_focus = KEEP_FOCUS and focus and b > a and stems[b] == focus
            while not keep_focus and b >= a and (asked_at[b] or stops[b]):
                b -= 1
            if a > b:
                continue
            # A capital at a clause start says nothing: "However", "May".
            while (
                kind == "name"
                and a <= b
                and (words[a] in vb or words[a] in _MONTHS or words[a] in _WEEKDAYS)
                and (a == 0 or _CLAUSE_END.search(quote.gaps[a - 1]))
            ):
                a += 1
            if a > b:
                continue
            if keep_focus:
                weight += W_FOCUS
            elif thing and ((a0 < a and not all(stops[a0:a])) or (b < b0 and not all(stops[b + 1 : b0 + 1]))):
                # Content words were trimmed. An edge not trimmed is no
                # slice and all() made (all of none is true).
                weight -= W_TRIMMED
        elif all(compress(asked_at[a : b + 1], quote.nums[a : b + 1])):
            continue  # the number is the question's own
        key = (a, b, kind)
        if key in seen:
            continue
        seen.add(key)
        lo, hi = bisect_left(hits, a), bisect_right(hits, b)
        if b - a > 1:
            weight -= W_INSIDE * (bisect_left(hits, b, lo, hi) - bisect_right(hits, a, lo, hi))
        # A name right before a lower-case noun modifies it ("Swiss canton",
        # "European terms"): the noun phrase, also a candidate, is the thing.
        if kind == "name" and b + 1 < n and not quote.breaks[b + 1] and not quote.caps[b + 1] and quote.joined[b]:
            weight -= W_MODIFIER
        if kind == "name" and q.kind == PLACE and a > 0 and words[a - 1] in ("in", "at", "from", "near", "to"):
            weight += 1.0
        if (
            kind == "number"
            and share
            and any(quote.raws[k].endswith("%") or words[k] in ("percent", "per") for k in range(a, b + 1))
        ):
            weight += 1.0
        left = hits[lo - 1] if lo else None
        right = hits[hi] if hi < len(hits) else None
        after = left is not None and (right is None or a - left <= right - b)
        if lo < hi:
            # A question word inside the phrase counts as near: the kept focus
            # noun ("the Black Sea" for "What sea") is the best sign there is.
            near_hits = hits[lo:hi] + [x for x in (left, right) if x is not None]
            distance, h = min((min(abs(h - a), abs(h - b)), h) for h in near_hits)
        elif hits:
            # The nearest question word outside, the one before on a tie.
            distance, h = (a - left, left) if after else (right - b, right)
        else:
            distance, h = n, None
        if W_CLAUSE and h is not None and (h < a or h > b):
            between = (ends[h], starts[a]) if h < a else (ends[b], starts[h])
            i = bisect_left(boundaries, between[0])
            if i < len(boundaries) and boundaries[i] < between[1]:
                weight -= W_CLAUSE
        # An answer tends to follow the question's words ("wanted him to
        # enter the priesthood"), as the object of the verb they hold.
        if after:
            weight += W_AFTER
        window = bisect_left(hits, a - WINDOW, 0, lo), bisect_right(hits, b + WINDOW, hi)
        gathered = gathered_in.get(window)
        if gathered is None:
            near: dict[str, float] = {}
            for stem, w in hit_weight[window[0] : window[1]]:
                if w > near.get(stem, 0.0):
                    near[stem] = w
            gathered = gathered_in[window] = sum(near.values()) / total
        score = weight - W_DISTANCE * distance - W_LENGTH * (b - a) + W_GATHER * gathered
        scored.append((score, a, b, kind, distance))
    # The best score first, the earlier candidate on a tie: sorted by the
    # start, then (stably) by the score, two sorts by C key functions
    # rather than one by a Python one called per candidate.
    scored.sort(key=_second)
    scored.sort(key=_first, reverse=True)
    return scored, starts, ends


def pick(index, q, p: int, first: int | None, last: int | None, bounds=None) -> tuple[int, int] | None:
    """(start, end) offsets in the passage of the short answer, or None."""
    scored, starts, ends = _scored(index, q, p, first, last, bounds)
    if not scored or scored[0][0] < MIN_FIT - 1.0:
        return None
    _, a, b, _, _ = scored[0]
    return starts[a], ends[b]


def explain(index, q, p: int, first: int | None, last: int | None, bounds=None) -> dict | None:
    """Why the short answer was picked, with the runner-up candidate."""
    scored, starts, ends = _scored(index, q, p, first, last, bounds)
    if not scored:
        return None
    passage_text = index.corpus.passages[p].text
    out = {
        "question_kind": q.kind,
        "rule": (
            "candidates of the kind the question asks for win; then the one nearest the question's words,"
            " where most of them gather, in the same clause"
        ),
    }
    for key, row in zip(("picked", "runner_up"), scored[:2], strict=False):
        score, a, b, kind, distance = row
        start, end = starts[a], ends[b]
        out[key] = {"text": passage_text[start:end], "kind": kind, "words_away": distance, "score": round(score, 3)}
    return out
