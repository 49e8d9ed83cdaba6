"""From a question to quoted answers: rank passages, pick the sentence, cite it.

The quote is always a verbatim span of a document: one sentence, or two
adjacent sentences when the second carries question terms the first lacks.
Its coordinates are 1-based lines and columns, end inclusive, computed from
the passage's own line numbers, so `Document.text_at` gives it back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from natoqa import text as textmod
from natoqa.index import Index, Sentence

# How many passages get their sentences examined. Sentence evidence re-ranks
# among these, so it must be more than the answers shown.
CANDIDATES = 10

# Below this share of the question's IDF mass found in the best passage,
# natoqa abstains: the passage shares only incidental words with the
# question. Calibrated in bench/quality.py.
MIN_COVERAGE = 0.35


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


@dataclass(frozen=True)
class Question:
    """A question analysed once: its terms and their weights in this index."""

    text: str
    terms: tuple[str, ...]  # distinct stemmed content terms, in order
    idf: tuple[float, ...]

    @property
    def mass(self) -> float:
        return sum(self.idf)


def analyse(index: Index, question: str) -> Question:
    terms = tuple(dict.fromkeys(textmod.terms(question)))
    return Question(question, terms, tuple(index.term_idf(t) for t in terms))


def ask(index: Index, question: str, top: int = 1, explain: bool = False) -> Result:
    """Answer one question with up to `top` quotes, best first."""
    q = analyse(index, question)
    if not q.terms:
        return Result(question, False, (), "no searchable words in the question")
    hits = index.search(q.terms, max(top, CANDIDATES))
    if not hits:
        return Result(question, False, (), "no passage shares a word with the question")
    answers = []
    for rank, hit in enumerate(hits[:top], 1):
        answer = _answer(index, q, hit.passage, hit.score, rank)
        if explain:
            runner_up = hits[rank] if rank < len(hits) else None
            answer = replace(answer, explain=explain_answer(index, q, hit, runner_up))
        answers.append(answer)
    if answers[0].coverage < MIN_COVERAGE:
        return Result(question, False, (), "the best passage matches too little of the question")
    return Result(question, True, tuple(answers))


def _answer(index: Index, q: Question, p: int, score: float, rank: int) -> Answer:
    passage = index.corpus.passages[p]
    weights = dict(zip(q.terms, q.idf))
    present = set(index.passage_terms[p])
    matched = tuple(t for t in q.terms if t in present)
    coverage = sum(weights[t] for t in matched) / q.mass if q.mass else 0.0
    first, last = _best_sentences(index.sentences[p], weights)
    if first is None:
        start, end = 0, len(passage.text)
    else:
        start, end = first.start, last.end
    return Answer(
        rank=rank,
        score=round(score, 4),
        document=passage.document,
        title=passage.title,
        path=passage.path,
        quote=span_in_passage(passage.text, passage.start_line, start, end),
        passage=PassageRef(passage.text, passage.start_line, passage.end_line),
        coverage=round(coverage, 4),
        matched=matched,
    )


def _best_sentences(sentences: tuple[Sentence, ...], weights: dict[str, float]):
    """The best sentence, or the best pair of adjacent ones."""
    if not sentences:
        return None, None
    sets = [set(s.terms) & weights.keys() for s in sentences]

    def value(found: set[str]) -> float:
        return sum(weights[t] for t in found)

    best = max(range(len(sentences)), key=lambda i: (value(sets[i]), -i))
    first = last = best
    # A neighbour joins the quote only when it brings question terms the
    # best sentence lacks, worth a real share of the question.
    gain_before = value(sets[best - 1] - sets[best]) if best > 0 else 0.0
    gain_after = value(sets[best + 1] - sets[best]) if best + 1 < len(sentences) else 0.0
    total = sum(weights.values()) or 1.0
    if max(gain_before, gain_after) / total >= 0.25:
        if gain_after >= gain_before:
            last = best + 1
        else:
            first = best - 1
    return sentences[first], sentences[last]


def span_in_passage(passage_text: str, first_line: int, start: int, end: int) -> Span:
    """The Span of passage_text[start:end] in document coordinates."""
    line = first_line + passage_text.count("\n", 0, start)
    line_start = passage_text.rfind("\n", 0, start) + 1
    last = end - 1
    end_line = first_line + passage_text.count("\n", 0, last)
    end_line_start = passage_text.rfind("\n", 0, last) + 1
    return Span(
        text=passage_text[start:end],
        start_line=line,
        start_col=start - line_start + 1,
        end_line=end_line,
        end_col=last - end_line_start + 1,
    )


def explain_answer(index: Index, q: Question, hit, runner_up) -> dict:
    """The numbers behind an answer: per-term BM25 contributions, the sentence choice."""
    p = hit.passage
    counts: dict[str, int] = {}
    for term in index.passage_terms[p]:
        counts[term] = counts.get(term, 0) + 1
    norm = index.k1 * (1 - index.b + index.b * index.doc_len[p] / (index.avgdl or 1.0))
    rows = []
    for term, idf in zip(q.terms, q.idf):
        tf = counts.get(term, 0)
        contribution = idf * tf * (index.k1 + 1) / (tf + norm) if tf else 0.0
        rows.append({"term": term, "idf": round(idf, 4), "tf": tf, "contribution": round(contribution, 4)})
    weights = dict(zip(q.terms, q.idf))
    sentences = index.sentences[p]
    first, last = _best_sentences(sentences, weights)
    chosen = [i for i, s in enumerate(sentences) if first is not None and first.start <= s.start and s.end <= last.end]
    sentence_rows = [
        {
            "index": i + 1,
            "matched": sorted(set(s.terms) & weights.keys()),
            "weight": round(sum(weights[t] for t in set(s.terms) & weights.keys()), 4),
            "chosen": i in chosen,
        }
        for i, s in enumerate(sentences)
    ]
    out = {
        "passage_score": round(hit.score, 4),
        "k1": index.k1,
        "b": index.b,
        "passage_length": index.doc_len[p],
        "average_length": round(index.avgdl, 2),
        "terms": rows,
        "sentences": sentence_rows,
        "rule": "the sentence holding the most question IDF weight; a neighbour joins it when it adds "
        "at least a quarter of the question's weight",
    }
    if runner_up is not None:
        other = index.corpus.passages[runner_up.passage]
        out["runner_up"] = {
            "path": other.path,
            "start_line": other.start_line,
            "end_line": other.end_line,
            "score": round(runner_up.score, 4),
        }
    return out
