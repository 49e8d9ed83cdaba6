"""Answer quality of natoqa on SQuAD and on the seed questions (issue 4).

    python bench/quality.py            # quick: questions-small.yaml
    python bench/quality.py --full     # every question (what `make bench` runs)

Settings, one row each in the printed table:

- squad2-whole: SQuAD 2.0 dev, the 35-article corpus at once.
- squad2-article: each SQuAD 2.0 article on its own (corpus = that file alone).
- off-topic: the answerable questions of each article asked of the next
  article's file; every one of them should get no answer.
- seeds: seeds/questions.yaml against the seed corpus.
- squad1-whole: SQuAD 1.1 dev, whole corpus, with short-answer EM/F1
  (the official SQuAD normalization and max over gold answers).

Metrics, for answerable questions: P@1 (the first answer's passage holds the
gold line), MRR@5, Span@1 (the first quote holds a gold answer; typographic
quotes and white space normalized, case-insensitive), Tight@1 (Span@1 with
a quote of at most 300 characters), answered rate; for unanswerable ones the
abstention rate; and milliseconds per question. An abstention counts as a
miss for every answerable metric.

The benchmark data lives outside the project, in ../shared/bench relative
to the repository root; without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import collections
import re
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
SQUAD2 = BENCH / "squad-dev"
SQUAD1 = BENCH / "squad-dev-v1.1"
SEEDS = ROOT / "seeds"

TIGHT_CHARS = 300

sys.path.insert(0, str(ROOT / "src"))

from natoqa.answer import ask  # noqa: E402
from natoqa.corpus import load_corpus  # noqa: E402
from natoqa.store import load_index  # noqa: E402

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def squash(text: str) -> str:
    """Typographic quotes folded, white space collapsed, case folded."""
    return " ".join(text.translate(_QUOTES).split()).casefold()


# --- the official SQuAD evaluation (evaluate-v1.1.py), verbatim in effect ---


def squad_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction: str, gold: str) -> float:
    pred = squad_normalize(prediction).split()
    truth = squad_normalize(gold).split()
    common = collections.Counter(pred) & collections.Counter(truth)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(truth)
    return 2 * precision * recall / (precision + recall)


def squad_em(prediction: str, gold: str) -> float:
    return float(squad_normalize(prediction) == squad_normalize(gold))


# --- loading ---


def load_questions(path: Path) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)["questions"]


def gold_lines(q: dict) -> tuple[int, ...]:
    line = q.get("line")
    if line is None:
        return ()
    return tuple(line) if isinstance(line, list) else (line,)


def is_answerable(q: dict) -> bool:
    return q.get("answerable", True)


# --- scoring ---


@dataclass
class Tally:
    name: str
    n_ans: int = 0
    p1: float = 0.0
    rr: float = 0.0
    span: float = 0.0
    tight: float = 0.0
    answered: float = 0.0
    n_unans: int = 0
    abstained: float = 0.0
    em: float = 0.0
    f1: float = 0.0
    short_given: float = 0.0
    seconds: float = 0.0
    failures: list = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for key in ("n_ans", "p1", "rr", "span", "tight", "answered", "n_unans", "abstained"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for key in ("em", "f1", "short_given", "seconds"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.failures.extend(other.failures)

    @property
    def n(self) -> int:
        return self.n_ans + self.n_unans


def holds_gold(answer, q: dict) -> bool:
    if answer.document != q["document"]:
        return False
    return any(answer.passage.start_line <= line <= answer.passage.end_line for line in gold_lines(q))


# --- --dense: natoqa.dense's re-ranker in place of the lexical engine alone ---

DENSE: dict = {}  # with --dense: the encoder, and passage vectors already computed, by input text


def _ask(index, question: str, top: int):
    if not DENSE:
        return ask(index, question, top=top)
    ranker = DENSE["rankers"].get(id(index))
    if ranker is None:
        ranker = DENSE["rankers"][id(index)] = _dense_ranker(index)
    return ranker.ask(question, top=top)


def _dense_ranker(index):
    """A DenseRanker over index whose passage vectors come from the cache or
    from passages already embedded in this run (each article's passages are
    the whole corpus's), so a per-article corpus is not embedded again."""
    from natoqa import dense

    return dense.DenseRanker.sharing(index, DENSE["encoder"], DENSE["folder"], DENSE["known"], **DENSE["options"])


def run(index, questions: list[dict], name: str, top: int = 5, short: bool = False) -> Tally:
    tally = Tally(name)
    for q in questions:
        started = time.perf_counter()
        result = _ask(index, q["question"], top)
        tally.seconds += time.perf_counter() - started
        if not is_answerable(q):
            tally.n_unans += 1
            tally.abstained += not result.answered
            if result.answered:
                tally.failures.append((q, result))
            continue
        tally.n_ans += 1
        answers = result.answers if result.answered else ()
        tally.answered += bool(answers)
        for rank, a in enumerate(answers[:5], 1):
            if holds_gold(a, q):
                tally.rr += 1 / rank
                break
        ok = False
        if answers:
            first = answers[0]
            quote = squash(first.quote.text)
            tally.p1 += holds_gold(first, q)
            if any(squash(g) in quote for g in q["answers"]):
                ok = True
                tally.span += 1
                tally.tight += len(first.quote.text) <= TIGHT_CHARS
            if short:
                pred = first.answer.text if first.answer is not None else ""
                tally.short_given += first.answer is not None
                tally.em += max(squad_em(pred, g) for g in q["answers"])
                tally.f1 += max(squad_f1(pred, g) for g in q["answers"])
        if not (ok and answers and holds_gold(answers[0], q)):
            tally.failures.append((q, result))
    return tally


# --- settings ---


def squad_whole(root: Path, questions, name: str, short: bool = False) -> Tally:
    index = load_index(load_corpus(root / "corpus"), use_cache=False)
    return run(index, questions, name, short=short)


def by_document(questions) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for q in questions:
        out.setdefault(q["document"], []).append(q)
    return out


def squad_articles(questions) -> tuple[Tally, Tally]:
    """Each article alone, and its answerable questions asked of the next one."""
    groups = by_document(questions)
    docs = list(groups)
    indexes = {doc: load_index(load_corpus(SQUAD2 / "corpus" / f"{doc}.txt"), use_cache=False) for doc in docs}
    own = Tally("squad2-article")
    off = Tally("off-topic")
    for i, doc in enumerate(docs):
        # The single-file corpus names its document by the file's stem, as
        # the whole corpus does, so gold documents still match.
        own.add(run(indexes[doc], groups[doc], doc))
        other = docs[(i + 1) % len(docs)]
        strangers = [{**q, "answerable": False} for q in groups[doc] if is_answerable(q)]
        off.add(run(indexes[other], strangers, doc, top=1))
    return own, off


def seeds() -> Tally:
    index = load_index(load_corpus(SEEDS), use_cache=False)
    return run(index, load_questions(SEEDS / "questions.yaml"), "seeds")


# --- output ---


def fmt(x: float, n: int) -> str:
    return f"{x / n:.3f}" if n else "-"


def table(rows: list[Tally]) -> str:
    head = "| setting | answerable | P@1 | MRR@5 | Span@1 | Tight@1 | answered | unanswerable | abstained | EM | F1 | ms/q |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for t in rows:
        short = t.name.startswith("squad1")
        lines.append(
            f"| {t.name} | {t.n_ans} | {fmt(t.p1, t.n_ans)} | {fmt(t.rr, t.n_ans)} | {fmt(t.span, t.n_ans)} | "
            f"{fmt(t.tight, t.n_ans)} | {fmt(t.answered, t.n_ans)} | {t.n_unans} | {fmt(t.abstained, t.n_unans)} | "
            f"{fmt(t.em, t.n_ans) if short else '-'} | {fmt(t.f1, t.n_ans) if short else '-'} | "
            f"{1000 * t.seconds / t.n if t.n else 0:.2f} |"
        )
    return "\n".join(lines)


def show_failures(t: Tally, limit: int) -> None:
    for q, result in t.failures[:limit]:
        print(f"- [{t.name}] {q['question']!r} gold={q.get('answers')} line={q.get('line')}", file=sys.stderr)
        if result.answered:
            a = result.answers[0]
            short = a.answer.text if a.answer is not None else None
            print(f"    got {a.document}:{a.quote.start_line} short={short!r}: {a.quote.text[:160]!r}", file=sys.stderr)
        else:
            print(f"    no answer: {result.reason}", file=sys.stderr)


SETTINGS = ("whole", "article", "seeds", "squad1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every question, not questions-small.yaml")
    parser.add_argument("--only", default=",".join(SETTINGS), help=f"comma-separated subset of {','.join(SETTINGS)}")
    parser.add_argument(
        "--half",
        choices=("all", "tune", "test"),
        default="all",
        help="tune: even-numbered questions only, test: odd-numbered (a held-out split for tuning)",
    )
    parser.add_argument("--failures", type=int, default=0, help="print up to N failures per setting on stderr")
    parser.add_argument("--dense", action="store_true", help="re-rank with natoqa.dense (the natoqa[dense] extra)")
    parser.add_argument(
        "--dense-fallback", type=float, default=None, help="with --dense: FALLBACK_MAXSIM instead of the default"
    )
    parser.add_argument(
        "--dense-answer-maxsim",
        type=float,
        default=None,
        help="with --dense: ANSWER_MAXSIM instead of the default (below -10: never withdraw a lexical answer)",
    )
    args = parser.parse_args(argv)
    # Before --dense's model is loaded: without the data there is nothing to
    # re-rank, and a missing model would fail a run that should skip.
    if not SQUAD2.is_dir() or not SQUAD1.is_dir():
        print(f"bench/quality.py: benchmark data not found at {BENCH}; skipping", file=sys.stderr)
        return 0
    if args.dense:
        from natoqa import dense

        folder = dense.model_dir()
        options = {}
        if args.dense_fallback is not None:
            options["fallback"] = args.dense_fallback
        if args.dense_answer_maxsim is not None:
            options["answer_maxsim"] = None if args.dense_answer_maxsim < -10 else args.dense_answer_maxsim
        DENSE.update(encoder=dense.Encoder.load(folder), folder=folder, known={}, rankers={}, options=options)
    only = set(args.only.split(","))
    name = "questions.yaml" if args.full else "questions-small.yaml"

    def pick(qs):
        if args.half == "all":
            return qs
        parity = 0 if args.half == "tune" else 1
        return [q for i, q in enumerate(qs) if i % 2 == parity]

    rows = []
    if "whole" in only or "article" in only:
        squad2 = pick(load_questions(SQUAD2 / name))
        if "whole" in only:
            rows.append(squad_whole(SQUAD2, squad2, "squad2-whole"))
        if "article" in only:
            rows.extend(squad_articles(squad2))
    if "seeds" in only:
        rows.append(seeds())
    if "squad1" in only:
        rows.append(squad_whole(SQUAD1, pick(load_questions(SQUAD1 / name)), "squad1-whole", short=True))
    print(
        f"natoqa quality, {name}{'' if args.half == 'all' else f' ({args.half} half)'}{' --dense' if args.dense else ''}"
    )
    print(table(rows))
    for t in rows:
        if t.name == "seeds":
            right = t.n - len(t.failures)
            print(f"seeds: {right} of {t.n} right")
        if t.name.startswith("squad1") and t.n_ans:
            print(f"squad1 short answer given for {t.short_given / t.n_ans:.3f} of questions")
        if args.failures:
            show_failures(t, args.failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
