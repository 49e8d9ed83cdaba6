"""Text analysis: normalization, tokens, stems, stopwords and sentence spans.

Everything here is pure computation on strings; nothing reads the corpus.
The same analysis runs over passages at index time and over questions at
query time, so a question's terms meet the passage terms on equal footing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from operator import itemgetter
from pathlib import Path

from natoqa import _nltk
from natoqa._marks import MARKS


def data_text(name: str) -> str:
    """A data file shipped beside this module (stopwords.txt, lexicon.txt, ...).
    Read by path, not through importlib.resources: importing that costs
    about 10 ms of every start, and the package is always installed as files."""
    return (Path(__file__).parent / name).read_text("utf-8")


# Typographic quotes, apostrophes and dashes are folded to ASCII so that
# "It's" typed in a terminal matches "It’s" set by a newspaper's CMS.
# Every replacement is one character for one character: offsets computed
# on normalized text are valid on the original text too.
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u02bc": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)

# A word character: `\w` (letters, digits, underscore) or a combining mark,
# which `\w` leaves out: "Mu\u0308ller" (ü decomposed) was "Mu" and "ller",
# and a Hindi word its letters, each vowel sign a break.
WORD = f"[\\w{MARKS}]"

# A token is a run of word characters, possibly joined by inner apostrophes,
# periods or commas ("it's", "U.S.", "5,000", "3.5"). Inner punctuation is
# kept so that "U.S." does not collapse into the stopword "us".
_TOKEN = re.compile(f"{WORD}+(?:['.,]{WORD}+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

STEM_CACHE_SIZE = 200_000


# The table str.translate reads: _FOLD, and every other character up to the
# end of Latin Extended-B mapped to itself. A character the table lacks is
# looked up as a KeyError raised and cleared, one per character of a text
# not all ASCII (some 16,000 instructions a question, each of its distinct
# characters once, and a quote's in full).
_FOLD_TABLE = {c: c for c in range(0x250)} | _FOLD


def fold(text: str) -> str:
    """Fold typographic punctuation to ASCII, character for character."""
    if text.isascii() and "`" not in text:
        return text  # the one ASCII character _FOLD maps is the backtick
    return text.translate(_FOLD_TABLE)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """The shipped English stopword list (one word a line, '#' comments)."""
    raw = data_text("stopwords.txt")
    words = set()
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.add(line)
    return frozenset(words)


# Memoized: index building normalizes every token of the corpus twice (for
# the terms and for the short-answer phrases), and words repeat.
@lru_cache(maxsize=STEM_CACHE_SIZE)
def normalize_token(raw: str) -> str:
    """Lower-case a raw token and strip the possessive; '5,000' -> '5000'.
    Composed (NFC): "Mu\u0308ller" in a document meets "Müller" in a question."""
    word = raw.lower()
    if not word.isascii():
        import unicodedata

        word = unicodedata.normalize("NFC", word)
    if _NUMBER.fullmatch(word):
        # Thousands separators carry no meaning for matching; a decimal point
        # does, but "5,000" and "5000" must meet.
        return word.replace(",", "")
    if word.endswith("'s"):
        word = word[:-2]
    return word.rstrip(".,'")


@lru_cache(maxsize=1)
def american_spellings() -> dict[str, str]:
    """British spelling -> American spelling, from the shipped spelling.txt."""
    raw = data_text("spelling.txt")
    pairs = {}
    for line in raw.splitlines():
        line = line.split("#", 1)[0].split()
        if len(line) == 2:
            pairs[line[0]] = line[1]
    return pairs


def american(word: str) -> str:
    """The American spelling of a lower-cased word ("defence" -> "defense")."""
    return american_spellings().get(word, word)


class SortedLines:
    """A data file of `KEY REST` lines sorted by KEY (after its '#' header),
    as a read-only mapping KEY -> REST.

    A key is looked for in one block of lines, found by bisection in an
    index of BLOCKS keys spread evenly through the text (made at the first
    lookup, under 1 ms), by one search of the text for the line that starts
    with it. Reading every line into a dict cost a process's first question
    48 ms for lexicon.txt's 55,388 lines and 14 ms for wordfreq.txt's
    17,717, a third of its time after the imports; a lookup here costs a
    microsecond or two, and a batch's thousands stay cheaper than that.
    """

    BLOCKS = 1024

    def __init__(self, text: str):
        self._text = text
        body = 0
        while text.startswith("#", body):  # the header
            body = text.find("\n", body) + 1 or len(text)
        self._body = body
        self._keys: list[str] | None = None
        self._starts: list[int] = []

    def _index(self) -> None:
        text, n = self._text, len(self._text)
        starts = []
        at = self._body
        step = max(1, (n - at) // self.BLOCKS)
        while at < n:
            starts.append(at)
            at = text.find("\n", at + step) + 1 or n  # the next line's start
        keys = []
        for at in starts:
            end = text.find("\n", at)
            keys.append(text[at : end if end >= 0 else n].partition(" ")[0])
        self._starts = starts + [n]
        self._keys = keys

    def get(self, key: str, default=None):
        if self._keys is None:
            self._index()
        i = bisect_right(self._keys, key) - 1
        if i < 0:
            return default
        text, lo, hi = self._text, self._starts[i], self._starts[i + 1]
        head = key + " "
        if text.startswith(head, lo):
            at = lo + len(head)
        else:
            # Every later line of the block follows a line break in it.
            found = text.find("\n" + head, lo, hi)
            if found < 0:
                return default
            at = found + 1 + len(head)
        end = text.find("\n", at)
        return text[at : end if end >= 0 else len(text)]

    def whole(self) -> dict[str, str]:
        """Every line, as a dict (tools/build_lexicon.py reads them all)."""
        return dict(line.partition(" ")[::2] for line in self._text[self._body :].splitlines() if line)


@lru_cache(maxsize=1)
def background_zipf() -> SortedLines:
    """Stem -> how common it is in English (Zipf scale, as text), from wordfreq.txt."""
    return SortedLines(data_text("wordfreq.txt"))


@lru_cache(maxsize=1)
def _lexicon() -> SortedLines:
    """Term -> the rest of its lexicon.txt line, split only when asked for."""
    return SortedLines(data_text("lexicon.txt"))


@lru_cache(maxsize=STEM_CACHE_SIZE)
def related(term: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(near, far) relatives of a term from the shipped WordNet lexicon.

    Near: synonyms, derivations, pertainyms ("penalti" -> "punish",
    "canadian" -> "canada"). Far: a proper noun's definition words and one
    level up and down the hierarchy ("kremlin" -> "russian govern",
    "consequ" -> "fallout"). Built by tools/build_lexicon.py.
    """
    rest = _lexicon().get(term)
    if not rest:
        return (), ()
    near, _, far = rest.partition("|")
    return tuple(near.split()), tuple(far.split())


# A stem as common as "year" (Zipf 7.5) tells nothing about a question's
# subject; one missing from the list is rarer than Zipf 2.
COMMON_ZIPF = 7.5
RARE_ZIPF = 2.0


@lru_cache(maxsize=STEM_CACHE_SIZE)
def telling(term: str) -> float:
    """How much a stem says about what a text is about: rarer says more."""
    zipf = background_zipf().get(term)
    return max(0.0, COMMON_ZIPF - (RARE_ZIPF if zipf is None else float(zipf)))


@lru_cache(maxsize=STEM_CACHE_SIZE)
def stem(word: str) -> str:
    """Snowball (Porter2) stem of a lower-cased word, spelling folded first.

    Folding British to American spelling before stemming lets "defence" and
    "defense", "neighbouring" and "neighboring" meet; the stemmer alone
    keeps them apart.
    """
    known = _KNOWN_STEMS.get(word)
    if known is not None:
        return known
    return _nltk.stemmer().stem(american(word))


# Stems told before they are asked for (know_stems): a corpus's words, as
# its index stemmed them. The stemmer is pure Python, some 12 us a word; a
# process restored from the cache has stemmed none of the corpus's words,
# and 1,000 SQuAD 2.0 questions stemmed 4,394 of them again (with them
# known, 5.50M -> 5.16M instructions a question).
_KNOWN_STEMS: dict[str, str] = {}


def know_stems(words: str, stems: str) -> None:
    """Take each word's stem as known, in place of those told before (one
    corpus's at a time: the memory stays that of the largest): `words` and
    `stems` are the words and their stems, one a line, in the same order
    (Index.word_stems)."""
    global _KNOWN_STEMS
    _KNOWN_STEMS = dict(zip(words.split("\n"), stems.split("\n"), strict=True)) if words else {}


_WORD_OF = itemgetter(0)


def tokens_with_spans(text: str) -> list[tuple[str, int, int]]:
    """(normalized word, start, end) for every token, stopwords included."""
    norm = normalize_token
    out = [(norm(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(fold(text))]
    # A token can normalize to nothing ("'"): rare, so looked for after.
    return [t for t in out if t[0]] if not all(map(_WORD_OF, out)) else out


def terms_with_spans(text: str, known=None) -> list[tuple[str, int, int]]:
    """(stemmed term, start, end) for every content token (no stopwords).

    `known`, when the caller has them, are those tokens' stems in order
    (the index's, for whole sentences of a passage): taken, when there are
    as many, instead of stemming each word again. A process restored from
    the cache has stemmed none of the corpus's words: long quotes' words
    were over half of the words 1,000 SQuAD 2.0 questions stemmed.
    """
    stop = stopwords()
    found = []
    append = found.append
    for match in _TOKEN.finditer(fold(text)):
        word = normalize_token(match.group())
        if word and word not in stop:
            start, end = match.span()
            append((word, start, end))
    if known is not None and len(known) == len(found):
        return [(term, start, end) for term, (_, start, end) in zip(known, found, strict=True)]
    return [(stem(word), start, end) for word, start, end in found]


def uncut(text: str, at: int) -> bool:
    """Whether no token runs across offset `at`: tokens hold no white space."""
    return at == 0 or at == len(text) or text[at - 1].isspace() or text[at].isspace()


def terms(text: str) -> list[str]:
    """The stemmed content terms of a text, in order, repeats kept."""
    return [term for term, _, _ in terms_with_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence of a passage.

    Punkt runs with a fixed list of abbreviations instead of a trained model,
    so nothing needs downloading and "U.S." or "Gen." never ends a sentence.
    Line breaks are ordinary white space to it: hard-wrapped prose keeps its
    sentences whole.
    """
    spans = []
    for start, end in _nltk.sentence_splitter().span_tokenize(text):
        # Punkt keeps a passage's leading white space in its first sentence;
        # a quote must start (and its column point) at the first character.
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans
