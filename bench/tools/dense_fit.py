"""Fit the fusion of natoqa.dense's re-ranker (natoqa ask --dense).

    python bench/tools/dense_fit.py dump         # every candidate's raw numbers -> bench/.work/dense.npz
    python bench/tools/dense_fit.py [L2 ...]     # fit on the tune half, P@1 on both halves
    python bench/tools/dense_fit.py cv [L2 ...]  # choose L2: 2-fold cross-validation inside the tune half

`dump` asks the lexical engine (natoqa.answer.ask) for its DEPTH best
answers to every answerable SQuAD 2.0 dev question, in two settings: the
whole corpus, and each article alone (as bench/quality.py's squad2-whole
and squad2-article). For each answer it writes what natoqa.dense.features
is computed from (the lexical score, the passage's length and
natoqa.dense.DenseRanker.cosines) with labels: the passage
holds the gold line, the quote holds a gold answer (Span), and the
question's half (even-numbered questions: tune, odd: test; bench/quality.py
--half). Questions the lexical engine abstains on are counted, not dumped:
the fusion never sees them.

Fitting fits a conditional logit (softmax over a question's candidates, the
gold passages' probability maximized, L2 on standardized features) by
Newton's method, on the TUNE half of the whole-corpus setting only, and
prints P@1 and Span@1 (over all answerable questions of the half, an
abstention a miss) on both halves and both settings, for the lexical order
alone, the hand-tuned fusion these weights replaced (HAND), the current
weights and the fitted ones. The test half is never used to fit or choose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One BLAS thread, as natoqa.dense sets: the matrices here are small.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / ".work" / "dense.npz"
SETTINGS = ("whole", "article")

# natoqa.dense's fusion before these features: the lexical share + 1.0 x the
# passage's cosine + 0.5 x the closest sentence's, tuned by hand.
HAND = (1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0)


def dump() -> None:
    import quality

    from natoqa import dense
    from natoqa.answer import ask
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    questions = quality.load_questions(quality.SQUAD2 / "questions.yaml")
    whole = dense.DenseRanker.load(load_index(load_corpus(quality.SQUAD2 / "corpus")))
    # Vectors by input text: an article's passages are mostly the whole corpus's.
    known: dict = {}
    rankers = {}

    def ranker(setting: int, document: str):
        if setting == 0:
            return whole
        if document not in rankers:
            index = load_index(load_corpus(quality.SQUAD2 / "corpus" / f"{document}.txt"))
            if not known:  # the whole corpus's vectors, from the cache: every article's passages
                dense.DenseRanker.sharing(whole.index, whole.encoder, dense.model_dir(), known)
            rankers[document] = dense.DenseRanker.sharing(index, whole.encoder, dense.model_dir(), known)
        return rankers[document]

    cols = {k: [] for k in ("score", "length", "cosines", "y", "span", "q", "half", "setting")}
    asked = np.zeros((len(SETTINGS), 2), dtype=np.int64)  # answerable questions per setting and half
    for i, item in enumerate(questions):
        if not quality.is_answerable(item):
            continue
        qv = qt = None
        for setting in range(len(SETTINGS)):
            asked[setting, i % 2] += 1
            r = ranker(setting, item["document"])
            result = ask(r.index, item["question"], top=dense.DEPTH)
            if not result.answered:
                continue
            if qv is None:
                qv, qt = r.question_vectors(item["question"])
            for a, cosines in zip(result.answers, r.cosines(result.answers, qv, qt), strict=True):
                cols["score"].append(a.score)
                cols["length"].append(len(a.passage.text))
                cols["cosines"].append(cosines)
                cols["y"].append(quality.holds_gold(a, item))
                quote = quality.squash(a.quote.text)
                cols["span"].append(any(quality.squash(g) in quote for g in item["answers"]))
                cols["q"].append(i)
                cols["half"].append(i % 2)
                cols["setting"].append(setting)
        if i % 500 == 0:
            print(f"{i} of {len(questions)}", file=sys.stderr)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, asked=asked, **{k: np.array(v) for k, v in cols.items()})
    print(f"{asked.sum()} question asks, {len(cols['q'])} rows -> {OUT}")


# --- fitting -------------------------------------------------------------------------


class Data:
    """Candidates grouped by question and setting, with natoqa.dense.features."""

    def __init__(self, q, y, span, x):
        self.q, self.y, self.span, self.x = q, y, span, x
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        self.starts, self.ends = starts, np.r_[starts[1:], len(q)]

    @classmethod
    def load(cls, d) -> Data:
        from natoqa import dense

        if d["cosines"].ndim != 2 or d["cosines"].shape[1] != len(dense.FEATURES) - 2:
            sys.exit(f"{OUT} is from another natoqa.dense (its FEATURES changed): run `dense_fit.py dump` again")
        q = d["q"] * len(SETTINGS) + d["setting"]  # one group per question and setting
        data = cls(q, d["y"].astype(bool), d["span"].astype(bool), None)
        data.x = np.concatenate(
            [
                dense.features(d["score"][a:b], d["length"][a:b], d["cosines"][a:b])
                for a, b in zip(data.starts, data.ends, strict=True)
            ]
        )
        return data

    def rows(self, mask) -> Data:
        return Data(self.q[mask], self.y[mask], self.span[mask], self.x[mask])

    def groups(self, keep) -> Data:
        return self.rows(np.isin(self.q, keep))

    def setting(self, setting: int, half: int) -> Data:
        return self.rows((self.q % len(SETTINGS) == setting) & (self.q // len(SETTINGS) % 2 == half))

    def first(self, w) -> np.ndarray:
        """Each question's first answer under weights w (ties: the lexical order)."""
        s = self.x @ w
        return np.array([a + int(np.argmax(s[a:b])) for a, b in zip(self.starts, self.ends, strict=True)])


def fit(data: Data, l2: float, steps: int = 100) -> np.ndarray:
    """Conditional logit by Newton's method (halving a step that does not
    lower the loss) on standardized features; only questions with a gold
    and a non-gold candidate teach anything."""
    keep = [data.q[a] for a, b in zip(data.starts, data.ends, strict=True) if 0 < data.y[a:b].sum() < b - a]
    d = data.groups(keep)
    seg = np.repeat(np.arange(len(d.starts)), d.ends - d.starts)
    n, k = len(d.starts), d.x.shape[1]
    scale = np.maximum(d.x.std(axis=0), 1e-9)
    xs = d.x / scale
    y = d.y.astype(float)

    def terms(w):
        s = xs @ w
        mx = np.full(n, -np.inf)
        np.maximum.at(mx, seg, s)
        e = np.exp(s - mx[seg])
        z, zg = np.bincount(seg, e, n), np.bincount(seg, e * y, n)
        loss = -np.mean(np.log(zg / z)) + 0.5 * l2 * w @ w
        return loss, e / z[seg], e * y / zg[seg]

    def spread(prob):
        # the sum over questions of the covariance of x under prob
        mean = np.zeros((n, k))
        np.add.at(mean, seg, prob[:, None] * xs)
        return (prob[:, None] * xs).T @ xs - mean.T @ mean

    w = np.zeros(k)
    loss, p, pg = terms(w)
    for _ in range(steps):
        grad = ((p - pg)[:, None] * xs).sum(axis=0) / n + l2 * w
        hess = (spread(p) - spread(pg)) / n + l2 * np.eye(k)
        step = np.linalg.solve(hess, grad)
        while True:
            new = terms(w - step)
            if new[0] <= loss or np.abs(step).max() < 1e-12:
                break
            step = step / 2
        w = w - step
        done = loss - new[0] < 1e-12
        loss, p, pg = new
        if done:
            break
    return w / scale


def rates(data: Data, w, asked: int) -> tuple[float, float]:
    """P@1 and Span@1 (the first quote holds a gold answer, wherever it is
    from, as bench/quality.py counts it) over `asked` answerable questions;
    abstentions are misses."""
    first = data.first(w)
    return data.y[first].sum() / asked, data.span[first].sum() / asked


def report(data: Data, asked, weights: dict) -> None:
    parts = {(s, h): data.setting(s, h) for s in range(len(SETTINGS)) for h in (0, 1)}
    for name, w in weights.items():
        cells = []
        for (s, h), part in parts.items():
            p1, span = rates(part, w, asked[s, h])
            cells.append(f"{SETTINGS[s]}-{'tune' if h == 0 else 'test'} P@1 {p1:.4f} Span@1 {span:.4f}")
        print(f"{name:>12s}: " + " | ".join(cells))


def cross_validate(data: Data, asked, l2s) -> None:
    """2-fold cross-validation inside the tune half of the whole corpus
    (folds by question number): how L2 was chosen."""
    tune = data.setting(0, 0)
    groups = np.unique(tune.q)
    fold = groups // len(SETTINGS) // 2 % 2
    for l2 in l2s:
        hits = 0
        for f in (0, 1):
            w = fit(tune.groups(groups[fold != f]), l2)
            held = tune.groups(groups[fold == f])
            hits += held.y[held.first(w)].sum()
        print(f"l2 {l2}: tune 2-fold P@1 {hits / asked[0, 0]:.4f}")


def main() -> None:
    if sys.argv[1:] == ["dump"]:
        dump()
        return
    from natoqa import dense

    d = np.load(OUT)
    asked, data = d["asked"], Data.load(d)
    if sys.argv[1:2] == ["cv"]:
        cross_validate(data, asked, [float(a) for a in sys.argv[2:]] or [1e-1, 1e-2, 1e-3, 1e-4])
        return
    lexical = np.zeros(len(dense.FEATURES))
    lexical[dense.FEATURES.index("lexical")] = 1.0
    weights = {"lexical": lexical, "hand": np.array(HAND), "current": np.array(dense.WEIGHTS)}
    tune = data.setting(0, 0)
    for l2 in (float(a) for a in (sys.argv[1:] or ["1e-3"])):
        w = fit(tune, l2)
        # On the lexical share's scale (its weight 1), as --explain shows
        # fused scores; rounded as written in natoqa/dense.py.
        w = np.round(w / w[dense.FEATURES.index("lexical")], 3)
        weights[f"l2 {l2}"] = w
        print(f"l2 {l2}: WEIGHTS = {tuple(float(v) for v in w)}")
        for name, v in zip(dense.FEATURES, w, strict=True):
            print(f"    {name:16s} {v:8.3f}")
    report(data, asked, weights)


if __name__ == "__main__":
    main()
