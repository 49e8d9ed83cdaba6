"""Reports of a `natoqa check` run: a compact human summary, JSON, JUnit XML."""

from __future__ import annotations

import re
from collections import Counter

from natoqa.check import FileReport, Outcome
from natoqa.render import one_line, quotation_marks, single_line, visible


def summary(reports: list[FileReport], seconds: float, min_pass_rate: float) -> dict:
    outcomes = [o for r in reports for o in r.outcomes]
    return _counts(outcomes) | {
        "min_pass_rate": min_pass_rate,
        "ok": pass_rate(outcomes) >= min_pass_rate,
        "seconds": round(seconds, 3),
    }


def pass_rate(outcomes) -> float:
    return sum(o.passed for o in outcomes) / len(outcomes) if outcomes else 1.0


def _counts(outcomes: list[Outcome]) -> dict:
    answerable = [o for o in outcomes if o.case.answerable]
    unanswerable = [o for o in outcomes if not o.case.answerable]
    return {
        "total": len(outcomes),
        "passed": sum(o.passed for o in outcomes),
        "failed": sum(not o.passed for o in outcomes),
        "pass_rate": pass_rate(outcomes),  # exact, as "ok" compares it
        "answerable": {"total": len(answerable), "passed": sum(o.passed for o in answerable)},
        "unanswerable": {"total": len(unanswerable), "abstained": sum(o.passed for o in unanswerable)},
    }


# Line breaks a question can hold: a YAML block scalar (`question: |`) or
# an escape in a quoted one ("...\n...").
_LINE_BREAK = re.compile("[\r\n\u2028\u2029]")


def question_text(outcome: Outcome) -> str:
    """The question on one line, as the human and JUnit reports show it
    (and got_text a quote): a block scalar's line breaks are the file's
    layout, and printed they broke the report's one line a field. JSON
    keeps the question as written."""
    question = outcome.case.question
    return one_line(question) if _LINE_BREAK.search(question) else question


def expected_text(outcome: Outcome) -> str:
    case = outcome.case
    if not case.answerable:
        return "no answer"
    where = case.document or "any document"
    if case.lines:
        where += ":" + ",".join(str(n) for n in case.lines)
    # An answer's line breaks are white space to the match (see
    # natoqa.check.normalize): shown as spaces, they keep the line one.
    answers = ", ".join(f'"{one_line(a) if _LINE_BREAK.search(a) else a}"' for a in case.answers)
    return visible(where + (f"  answers: {answers}" if answers else ""))


def got_text(outcome: Outcome) -> str:
    result = outcome.result
    if not result.answered:
        return f"no answer ({result.reason})" if result.reason else "no answer"
    a = result.answers[0]
    body = one_line(a.quote.text)
    opening, closing = quotation_marks(body)
    # The path as a picture of its line breaks too (a file name may hold
    # one): the reference stays on the `got:` line.
    return visible(f"{single_line(a.path)}:{a.quote.start_line}:{a.quote.start_col}: {opening}{body}{closing}")


def case_dict(outcome: Outcome) -> dict:
    case = outcome.case
    from natoqa.render import result_dict

    return {
        "index": case.index,
        "id": case.id,
        "question": case.question,
        "passed": outcome.passed,
        "why": outcome.why,
        "expected": {
            "answerable": case.answerable,
            "document": case.document or None,
            "lines": list(case.lines),
            "answers": list(case.answers),
        },
        "got": result_dict(outcome.result),
    }


def json_report(reports: list[FileReport], seconds: float, min_pass_rate: float) -> dict:
    return {
        "files": [
            {
                "file": r.check_file.path,
                "corpus": r.corpus_root,
                "top": r.check_file.top,
                "seconds": round(r.seconds, 3),
                "summary": _counts(list(r.outcomes)),
                "cases": [case_dict(o) for o in r.outcomes],
            }
            for r in reports
        ],
        "summary": summary(reports, seconds, min_pass_rate),
    }


def human_lines(reports: list[FileReport], seconds: float, min_pass_rate: float, style) -> list[str]:
    """The compact report: each failure, then one summary line a file (and a total)."""
    out = []
    for r in reports:
        for o in r.outcomes:
            if o.passed:
                continue
            # An id (`id: "a\nb"`) or a file name may hold a line break:
            # shown as a picture, it cannot start a line of its own.
            where = single_line(f"{r.check_file.path}:{o.case.yaml_line}: {o.case.label}: {o.why}")
            out.append(f"{style('FAIL', 'red')} {where}")
            out.append(f"  question: {visible(question_text(o))}")
            out.append(f"  expected: {expected_text(o)}")
            out.append(f"  got:      {got_text(o)}")
    for r in reports:
        # One file: its line carries the whole run's time (loading included).
        took = seconds if len(reports) == 1 else r.seconds
        out.append(_summary_line(single_line(r.check_file.path), list(r.outcomes), took, min_pass_rate, style))
    if len(reports) > 1:
        outcomes = [o for r in reports for o in r.outcomes]
        out.append(_summary_line("total", outcomes, seconds, min_pass_rate, style))
    return out


def _summary_line(name: str, outcomes, seconds: float, min_pass_rate: float, style) -> str:
    c = _counts(outcomes)
    rate = pass_rate(outcomes)
    verdict = style("ok", "green") if rate >= min_pass_rate else style("below minimum", "red")
    # As many decimals as it takes for a rate below the minimum not to read
    # as equal to it (1,999 of 2,000 against 100%: 99.95%, not 100.0%).
    digits = 1
    while digits < 6 and (rate >= min_pass_rate) != (_shown(rate, digits) >= _shown(min_pass_rate, digits)):
        digits += 1
    line = (
        f"{name}: {c['passed']} passed, {c['failed']} failed, pass rate {rate:.{digits}%} "
        f"(minimum {min_pass_rate:.{digits}%}, {verdict}), {seconds:.2f} s"
    )
    if c["unanswerable"]["total"]:
        a, u = c["answerable"], c["unanswerable"]
        line += f"; answerable {a['passed']}/{a['total']}, unanswerable {u['abstained']}/{u['total']} abstained"
    return line


def _shown(rate: float, digits: int) -> float:
    """A rate as a person reads it with that many decimals of a percent."""
    return float(f"{rate:.{digits}%}"[:-1])


def junit_xml(reports: list[FileReport]) -> str:
    """JUnit XML: a testsuite per file, a testcase per question."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="natoqa check")
    total = failures = 0
    for r in reports:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=_xml(r.check_file.path),
            tests=str(len(r.outcomes)),
            failures=str(r.failed),
            errors="0",
            skipped="0",
            time=f"{r.seconds:.3f}",
        )
        # Names as CI readers key testcases: the id, else the question, and
        # the entry's number where two entries ask the same question
        # (readers merge or overwrite testcases of one name).
        asked = Counter(question_text(o) for o in r.outcomes if not o.case.id)
        for o in r.outcomes:
            question = question_text(o)
            if o.case.id:
                name = f"{o.case.id}: {question}"
            else:
                name = question if asked[question] == 1 else f"entry {o.case.index}: {question}"
            name = _xml(name)
            case = ET.SubElement(
                suite, "testcase", classname=_xml(r.check_file.path), name=name, time=f"{o.seconds:.6f}"
            )
            if not o.passed:
                message = _xml(f"{o.why}; expected {expected_text(o)}; got {got_text(o)}")
                failure = ET.SubElement(case, "failure", message=message, type="AnswerMismatch")
                failure.text = _xml(f"question: {question}\nexpected: {expected_text(o)}\ngot:      {got_text(o)}\n")
        total += len(r.outcomes)
        failures += r.failed
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", "0")
    suites.set("time", f"{sum(r.seconds for r in reports):.3f}")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# What XML 1.0 cannot hold even escaped, beyond the control characters
# visible() pictures: surrogates (a file name that is not UTF-8) and the
# noncharacters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", visible(text))
