"""Choose when natoqa.dense answers (natoqa ask --dense): ANSWER_MAXSIM,
CONFIDENCE_SLOPE and FALLBACK_MAXSIM.

    python bench/tools/abstain_fit.py dump   # every question's signals -> bench/.work/abstain.npz
    python bench/tools/abstain_fit.py        # the grid, chosen on the tune half, both halves shown
    python bench/tools/abstain_fit.py margins  # the fallback's maxsim against margin signals

`dump` asks every SQuAD 2.0 dev question of the whole corpus and of its own
article, and every answerable one of the next article (off-topic, as
bench/quality.py does), and records: whether the lexical engine answers at
its own threshold; its confidence in its first passage (computed even when
it abstains); the fused first answer's maxsim and whether it is right
(passage and Span@1); and the fallback's best passage, maxsim and rightness
as if the lexical engine had abstained, with the second-best, median and
mean maxsim of the fallback's pool (for `margins`). Deciding from these is what
DenseRanker.ask does for the first answer, so any setting's figures follow
without asking again. (One difference: with -k N the fallback may answer
from its second passage when the first has no sentence to quote; the dump
asks for one answer.)

The grid (ANSWER_MAXSIM 0.30-0.55 and FALLBACK_MAXSIM 0.46-0.60 in steps of
0.01, CONFIDENCE_SLOPE 0-1.5 in steps of 0.25, 2 and 3) keeps the settings that answer at least as many whole-corpus and
own-article questions right, on the tune half (even-numbered questions), as
the lexical threshold alone with FALLBACK_MAXSIM 0.54, and of those picks
the one that answers the fewest off-topic questions (then the most right).
The held-out half (odd-numbered) is only reported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / ".work" / "abstain.npz"
# One row a question and setting (0 whole corpus, 1 own article, 2 off-topic).
COLUMNS = (
    "half",
    "setting",
    "answerable",
    "natural",
    "conf",
    "y1",
    "s1",
    "m1",
    "y2",
    "s2",
    "m2",
    "f2",
    "fmed",
    "fmean",
)


def dump() -> None:
    import quality

    from natoqa import answer, dense
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    questions = quality.load_questions(quality.SQUAD2 / "questions.yaml")
    whole = dense.DenseRanker.load(load_index(load_corpus(quality.SQUAD2 / "corpus")))
    known: dict = {}
    dense.DenseRanker.sharing(whole.index, whole.encoder, dense.model_dir(), known)
    groups = quality.by_document(questions)
    docs = list(groups)
    rankers = {
        doc: dense.DenseRanker.sharing(
            load_index(load_corpus(quality.SQUAD2 / "corpus" / f"{doc}.txt")), whole.encoder, dense.model_dir(), known
        )
        for doc in docs
    }
    vectors: dict = {}
    natural = answer.MIN_CONFIDENCE

    def span(a, item) -> bool:
        quote = quality.squash(a.quote.text)
        return any(quality.squash(g) in quote for g in item.get("answers", []))

    def row(ranker, item, setting: int, answerable: bool) -> list[float]:
        text, index = item["question"], ranker.index
        answered = answer.ask(index, text).answered
        answer.MIN_CONFIDENCE = -1.0  # every question ranked, none refused
        try:
            result = answer.ask(index, text, top=dense.DEPTH)
        finally:
            answer.MIN_CONFIDENCE = natural
        if text not in vectors:
            vectors[text] = whole.question_vectors(text)
        qv, qt = vectors[text]
        out = [item["_i"] % 2, setting, answerable, answered, result.confidence or 0.0]
        if result.answered:
            a = ranker.rerank(result, qv, qt, 1).answers[0]
            p = ranker.row[(a.document, a.passage.start_line)]
            right = answerable and quality.holds_gold(a, item)
            out += [right, right and span(a, item), dense.maxsim(qt, ranker.passage_tokens(p))]
        else:
            out += [False, False, -1.0]
        saved, ranker.fallback = ranker.fallback, -1e9
        try:
            fb = ranker._fallback(replace(result, answered=False, answers=()), qv, qt, 1)
        finally:
            ranker.fallback = saved
        if fb.answered:
            a = fb.answers[0]
            right = answerable and quality.holds_gold(a, item)
            # The unrounded maxsim, as _fallback compares it (a.score is rounded).
            p = ranker.row[(a.document, a.passage.start_line)]
            out += [right, right and span(a, item), dense.maxsim(qt, ranker.passage_tokens(p))]
        else:
            out += [False, False, -1.0]
        sims = sorted(ranker.fallback_pool(qv, qt)[1], reverse=True)
        out += [sims[1] if len(sims) > 1 else -1.0, float(np.median(sims)), float(np.mean(sims))]
        return out

    rows = []
    for i, item in enumerate(questions):
        item["_i"] = i
    for n, item in enumerate(questions):
        rows.append(row(whole, item, 0, quality.is_answerable(item)))
        if n % 1000 == 0:
            print(f"whole corpus: {n} of {len(questions)}", file=sys.stderr, flush=True)
    for k, doc in enumerate(docs):
        other = docs[(k + 1) % len(docs)]
        for item in groups[doc]:
            rows.append(row(rankers[doc], item, 1, quality.is_answerable(item)))
            if quality.is_answerable(item):
                rows.append(row(rankers[other], item, 2, False))
        print(f"articles: {k + 1} of {len(docs)}", file=sys.stderr, flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, rows=np.array(rows, dtype=np.float64))
    print(f"wrote {len(rows)} rows to {OUT}", file=sys.stderr)


def decide(d: dict, answer_maxsim: float | None, slope: float, fallback: float):
    """Which questions the lexical answer (L) and the fallback (F) answer."""
    from natoqa.answer import MIN_CONFIDENCE as min_confidence

    lexical = d["natural"] & (d["m1"] > -1)
    if answer_maxsim is not None:
        lexical &= d["m1"] + slope * (d["conf"] - min_confidence) >= answer_maxsim
    fell = ~lexical & ~d["natural"] & (d["m2"] > -1) & (d["m2"] >= fallback)
    return lexical, fell


def tally(d: dict, setting: int, half: int, rule) -> dict:
    sel = (d["setting"] == setting) & (d["half"] == half)
    part = {k: v[sel] for k, v in d.items()}
    lexical, fell = decide(part, *rule)
    answered = lexical | fell
    right = np.where(lexical, part["y1"], part["y2"]) & answered
    span = np.where(lexical, part["s1"], part["s2"]) & answered
    yes = part["answerable"]
    return {
        "right": int(right[yes].sum()),
        "span": int(span[yes].sum()),
        "answered": int(answered[yes].sum()),
        "n": int(yes.sum()),
        "unanswerable_answered": int(answered[~yes].sum()),
        "unanswerable": int((~yes).sum()),
    }


def fit() -> None:
    raw = np.load(OUT)["rows"]
    d = {name: raw[:, k] for k, name in enumerate(COLUMNS)}
    for name in ("answerable", "natural", "y1", "s1", "y2", "s2"):
        d[name] = d[name] > 0.5
    base = (None, 0.0, 0.54)

    def figures(rule, half):
        return [tally(d, s, half, rule) for s in range(3)]

    w0, o0, _ = figures(base, 0)
    chosen = []
    for answer_maxsim in np.round(np.arange(0.30, 0.555, 0.01), 2):
        for slope in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0):
            for fallback in np.round(np.arange(0.46, 0.605, 0.01), 2):
                rule = (float(answer_maxsim), slope, float(fallback))
                w, o, f = figures(rule, 0)
                if w["right"] >= w0["right"] and o["right"] >= o0["right"]:
                    chosen.append((f["unanswerable_answered"], -(w["right"] + o["right"]), rule))
    chosen.sort()
    print("setting (ANSWER_MAXSIM, CONFIDENCE_SLOPE, FALLBACK_MAXSIM): whole right / own right / off-topic answered")
    for label, rule in [("before", base)] + [(f"#{k + 1}", c[2]) for k, c in enumerate(chosen[:5])]:
        line = [f"{label:7s} {rule!s:22s}"]
        for half, name in ((0, "tune"), (1, "test")):
            w, o, f = figures(rule, half)
            line.append(
                f"{name} {w['right']}/{o['right']}/{f['unanswerable_answered']}"
                f" (P@1 {w['right'] / w['n']:.4f}, off-topic abstained {1 - f['unanswerable_answered'] / f['unanswerable']:.4f})"
            )
        print("  ".join(line))


def margins() -> None:
    """Whether the fallback tells right answers from off-topic ones better
    by how far its best passage's maxsim stands above the rest of its pool
    than by that maxsim alone: for each signal, the threshold that lets at
    most N off-topic questions through the fallback, and what it answers
    (right / answered / fallen back on) of the answerable questions, whole
    corpus and own article, at the chosen ANSWER_MAXSIM and slope."""
    from natoqa import dense
    from natoqa.answer import MIN_CONFIDENCE as min_confidence

    raw = np.load(OUT)["rows"]
    d = {name: raw[:, k] for k, name in enumerate(COLUMNS)}
    for name in ("answerable", "natural", "y2"):
        d[name] = d[name] > 0.5
    lexical = d["natural"] & (d["m1"] > -1)
    lexical &= d["m1"] + dense.CONFIDENCE_SLOPE * (d["conf"] - min_confidence) >= dense.ANSWER_MAXSIM
    fallen = ~lexical & ~d["natural"] & (d["m2"] > -1)
    m2 = d["m2"]
    signals = {
        "maxsim": m2,
        "maxsim - pool median": m2 - d["fmed"],
        "maxsim - second best": m2 - d["f2"],
        "maxsim + 0.5 x (maxsim - median)": m2 + 0.5 * (m2 - d["fmed"]),
        "maxsim + 0.5 x (maxsim - mean)": m2 + 0.5 * (m2 - d["fmean"]),
        "maxsim + (maxsim - second best)": 2 * m2 - d["f2"],
    }
    for half, name in ((0, "tune"), (1, "test")):
        print(f"{name} half: right / answered / fallen back on, whole corpus and own article")
        for label, signal in signals.items():
            cells = []
            for budget in (5, 10, 20, 40):
                off = np.sort(signal[fallen & (d["setting"] == 2) & (d["half"] == half)])[::-1]
                bar = off[budget] + 1e-9 if len(off) > budget else -np.inf
                parts = []
                for setting in (0, 1):
                    asked = fallen & (d["setting"] == setting) & (d["half"] == half) & d["answerable"]
                    taken = asked & (signal >= bar)
                    parts.append(f"{int((taken & d['y2']).sum())}/{int(taken.sum())}/{int(asked.sum())}")
                cells.append(f"off-topic <= {budget}: {' '.join(parts)}")
            print(f"  {label:34s} " + " | ".join(cells))


def main(argv: list[str]) -> int:
    if argv[:1] == ["dump"]:
        dump()
        return 0
    if not OUT.exists():
        print(f"{OUT} not found: run `python bench/tools/abstain_fit.py dump` first", file=sys.stderr)
        return 2
    if argv[:1] == ["margins"]:
        margins()
        return 0
    fit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
