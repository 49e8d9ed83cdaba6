"""Fit the learned passage re-ranker of natoqa.answer (issue 4, session 9).

    python bench/tools/rerank_fit.py dump      # features of every pool passage -> bench/.work/rerank.npz
    python bench/tools/rerank_fit.py [L2 ...]  # fit: listwise logistic regression on the tune half
    python bench/tools/rerank_fit.py cv [L2 ...]  # choose L2: 2-fold cross-validation inside the tune half

`dump` runs the first stage (natoqa.answer._full_pool) for every answerable
SQuAD 2.0 dev question asked of the whole corpus and writes, for each of the
CANDIDATES pool passages, the features natoqa.answer.rerank_features
computes, with a label (the passage holds the gold line) and the question's
half (even-numbered questions: tune, odd: test; bench/quality.py --half).

Fitting fits a conditional logit (softmax over a question's pool, the gold
passages' probability maximized) by projected gradient descent, weights
kept >= 0 so that natoqa.answer's candidate bounds stay valid, on the TUNE
half only; it prints P@1 within the pool on both halves for the fitted and
the current weights. The test half is never used to fit or choose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / ".work" / "rerank.npz"


def dump() -> None:
    import quality

    from natoqa import answer as A
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    index = load_index(load_corpus(quality.SQUAD2 / "corpus"))
    questions = quality.load_questions(quality.SQUAD2 / "questions.yaml")
    rows, labels, qids, halves, same, kinds = [], [], [], [], [], []
    for i, item in enumerate(questions):
        if not quality.is_answerable(item):
            continue
        q = A.analyse(index, item["question"])
        if not q.terms and not q.related:
            continue
        for p, x in A.pool_features(index, q, int(os.environ.get("RERANK_POOL", A.CANDIDATES))):
            passage = index.corpus.passages[p]
            gold = passage.document == item["document"] and any(
                passage.start_line <= line <= passage.end_line for line in quality.gold_lines(item)
            )
            rows.append(x)
            labels.append(gold)
            qids.append(i)
            halves.append(i % 2)
            same.append(passage.document == item["document"])
            kinds.append(q.kind)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        OUT,
        x=np.array(rows),
        y=np.array(labels),
        q=np.array(qids),
        half=np.array(halves),
        same=np.array(same),
        kind=np.array(kinds),
    )
    print(f"{len(set(qids))} questions, {len(rows)} rows -> {OUT}")


def _groups(q):
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    return starts, np.r_[starts[1:], len(q)]


def p_at_1(x, y, q, w):
    s = x @ w
    starts, ends = _groups(q)
    hit = 0
    for a, b in zip(starts, ends, strict=True):
        # ties go to the earlier (first-stage) passage, as rank sorts by (-score, passage) ~ pool order
        hit += y[a + int(np.argmax(s[a:b]))]
    return hit / len(starts)


def fit(x, y, q, l2=1e-3, steps=3000, lr=0.5, init=None):
    starts, ends = _groups(q)
    keep = np.array([y[a:b].any() and not y[a:b].all() for a, b in zip(starts, ends, strict=True)])
    seg = np.repeat(np.arange(len(starts)), ends - starts)
    m = keep[seg]
    x, y, seg = x[m], y[m].astype(float), seg[m]
    _, seg = np.unique(seg, return_inverse=True)
    n = seg.max() + 1
    scale = np.maximum(x.std(axis=0), 1e-9)
    xs = x / scale
    w = np.zeros(x.shape[1]) if init is None else init * scale
    for _ in range(steps):
        s = xs @ w
        mx = np.full(n, -np.inf)
        np.maximum.at(mx, seg, s)
        e = np.exp(s - mx[seg])
        z = np.bincount(seg, e, n)
        zg = np.bincount(seg, e * y, n)
        p = e / z[seg]
        pg = e * y / zg[seg]
        grad = ((p - pg)[:, None] * xs).sum(axis=0) / n + l2 * w
        w = np.maximum(w - lr * grad, 0.0)
    loss = -np.mean(np.log(zg / z))
    return w / scale, loss


def cross_validate(x, y, q, l2s) -> None:
    """2-fold cross-validation inside the tune half (folds by question
    number), P@1 within the pool per L2 strength: how L2 was chosen."""
    fold = (q // 2) % 2
    for l2 in l2s:
        hits = 0.0
        for f in (0, 1):
            w, _ = fit(x[fold != f], y[fold != f], q[fold != f], l2=l2, steps=2000)
            held = fold == f
            hits += p_at_1(x[held], y[held], q[held], w) * len(np.unique(q[held]))
        print(f"l2 {l2}: tune 2-fold P@1 in pool {hits / len(np.unique(q)):.4f}")


def main() -> None:
    if sys.argv[1:] == ["dump"]:
        dump()
        return
    if sys.argv[1:2] == ["cv"]:
        d = np.load(OUT)
        tune = d["half"] == 0
        cross_validate(d["x"][tune], d["y"][tune], d["q"][tune], [float(a) for a in sys.argv[2:]] or [1e-2, 1e-3, 1e-4])
        return
    from natoqa import answer as A

    d = np.load(OUT)
    x, y, q, half = d["x"], d["y"], d["q"], d["half"]
    names = A.RERANK_FEATURES
    tune, test = half == 0, half == 1
    old = np.array(A.RERANK_OLD)
    in_pool = [y[(q == i)].any() for i in np.unique(q[tune])]
    print(f"tune questions {len(np.unique(q[tune]))}, gold in pool {np.mean(in_pool):.3f}")
    print(
        f"old weights: tune {p_at_1(x[tune], y[tune], q[tune], old):.4f} test {p_at_1(x[test], y[test], q[test], old):.4f}"
    )
    for l2 in (float(a) for a in (sys.argv[1:] or ["1e-3"])):
        w, loss = fit(x[tune], y[tune], q[tune], l2=l2)
        # On the old score's scale (its weights' sum), so scores shown stay
        # comparable; rounded as written in natoqa/answer.py.
        w = np.round(w * old.sum() / w.sum(), 3)
        print(
            f"l2 {l2}: loss {loss:.4f} tune {p_at_1(x[tune], y[tune], q[tune], w):.4f} "
            f"test {p_at_1(x[test], y[test], q[test], w):.4f}"
        )
        for name, v in zip(names, w, strict=True):
            print(f"    {name:16s} {v:.3f}")
        print("RERANK =", tuple(float(v) for v in w))


if __name__ == "__main__":
    main()
