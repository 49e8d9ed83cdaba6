"""Known questions as a gate: the questions file, its schema, and running it.

A questions file is YAML: a top-level `questions` list whose entries have a
`question` and optionally `id`, `document`, `line` (an int or a list: any
line of the gold passage), `answers` (the quote must contain one of them)
and `answerable` (false: natoqa must abstain). Top-level `corpus` (relative
to the file) and `top` (a case passes when any of the first N answers does)
are optional.

The file is validated as a whole before anything runs, from the YAML node
tree, so every problem can name the file, the entry and its line.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from natoqa import yamltext
from natoqa.answer import Answer, Result
from natoqa.errors import CheckFileError, UsageError
from natoqa.session import validate_question
from natoqa.text import fold

# Questions files are lists of short records; the SQuAD 2.0 dev file is
# 2.6 MB. A bigger file is a mistake, and refusing it bounds the memory
# the YAML parser can take.
MAX_FILE_BYTES = 64 * 1024 * 1024

TOP_KEYS = {"questions", "corpus", "top"}
ENTRY_KEYS = {"question", "id", "document", "line", "answers", "answerable"}


@dataclass(frozen=True)
class Case:
    index: int  # 1-based position in the file's list
    question: str
    id: str = ""
    document: str = ""
    lines: tuple[int, ...] = ()
    answers: tuple[str, ...] = ()
    answerable: bool = True
    yaml_line: int = 0  # 1-based line of the entry in the file

    @property
    def label(self) -> str:
        return f"entry {self.index}" + (f" (id {self.id})" if self.id else "")


@dataclass(frozen=True)
class CheckFile:
    path: str
    cases: tuple[Case, ...]
    corpus: str | None = None  # resolved against the file's folder
    top: int = 1
    corpus_line: int = 0  # 1-based line of the 'corpus' key's value
    text: str = field(default="", repr=False)  # the file as read, for --record


@dataclass(frozen=True)
class Outcome:
    case: Case
    passed: bool
    result: Result
    why: str = ""  # what was wrong, for a failure
    seconds: float = 0.0  # answering it, for JUnit's per-case time


def read_check_file(path: str) -> CheckFile:
    """Parse and validate a questions file (not yet against a corpus)."""
    import yaml

    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise CheckFileError(f"{path}: {size:,} bytes is over the limit of {MAX_FILE_BYTES:,} for a questions file")
        with open(path, "rb") as handle:
            # Bounded even when the size says nothing: /dev/zero, a pipe.
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise CheckFileError(f"{path}: over the limit of {MAX_FILE_BYTES:,} bytes for a questions file")
    except FileNotFoundError:
        raise CheckFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckFileError(f"{path}: is a folder, not a questions file") from None
    except OSError as exc:
        raise CheckFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckFileError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    try:
        loader = yamltext.fast_loader()
        mark = yamltext.first_alias(text, loader)
        if mark is not None:
            raise CheckFileError(
                f"{path}:{mark.line + 1}:{mark.column + 1}: YAML aliases (*name) are not allowed in a questions file"
            )
        root = yaml.compose(text, Loader=loader)
    except RecursionError:
        raise CheckFileError(f"{path}: YAML syntax error: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CheckFileError(f"{path}{where}: YAML syntax error: {problem}") from None
    return _validate(path, root, text)


# YAML 1.1's octal integers, as PyYAML resolves them: a leading 0 makes
# `015` the number 13, where a person wrote 15.
_OCTAL = re.compile(r"[-+]?0[0-7_]+\Z")


def _line(node) -> int:
    return node.start_mark.line + 1


def _scalar(node, tag: str):
    """The value of a scalar node if its resolved type is `tag`, else None."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag != f"tag:yaml.org,2002:{tag}":
        return None
    if tag not in ("int", "bool"):
        return node.value
    # An explicit tag (`!!int abc`) sets node.tag whatever the text is: the
    # value is parsed and its type checked, and a number too long for
    # int() (over 4,300 digits) is no number.
    if len(node.value) > 100:
        return None
    if tag == "int" and ":" in node.value:
        return None  # YAML 1.1's base 60: `line: 1:30` would be line 90
    if tag == "int" and _OCTAL.match(node.value):
        return None  # YAML 1.1's octal: `line: 015` would be line 13
    try:
        value = yaml.safe_load(node.value)
    except (yaml.YAMLError, ValueError):
        return None
    if tag == "bool":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kind(node) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    for tag in ("int", "bool"):
        if node.tag == f"tag:yaml.org,2002:{tag}" and _scalar(node, tag) is None:
            # Refused by _scalar: a number too long, or an explicit tag on
            # text that is no such value (`!!bool maybe`), named as what it
            # is, not as the type its tag claims.
            if tag == "int" and ":" in node.value:
                return f"{node.value[:40]!r}, which YAML reads as a number in base 60"
            if tag == "int" and _OCTAL.match(node.value):
                return f"{node.value[:40]!r}, which YAML reads as an octal number (write it without the leading 0)"
            if yaml.resolver.Resolver().resolve(yaml.ScalarNode, node.value, (True, False)) == node.tag:
                return f"a number of {len(node.value):,} characters"
            text = node.value if len(node.value) <= 40 else node.value[:40] + "…"
            return f"{text!r} tagged !!{tag}"
    if node.tag == "tag:yaml.org,2002:str" and not node.style and re.fullmatch(r"[-+]?0[0-9_]+", node.value):
        # `08`, unquoted (style None, or "" from libyaml): no octal number,
        # so YAML 1.1 reads it as text.
        return f"{node.value[:40]!r}, which YAML reads as text (write it without the leading 0)"
    return {
        "tag:yaml.org,2002:str": "a string",
        "tag:yaml.org,2002:int": "an integer",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:null": "empty",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:merge": "a merge key (<<)",
    }.get(node.tag, "a value of another type")


def _validate(path: str, root, text: str) -> CheckFile:
    import yaml

    if root is None or not isinstance(root, yaml.MappingNode):
        found = "empty" if root is None else _kind(root)
        raise CheckFileError(f"{path}: must be a mapping with a 'questions' list, but it is {found}")
    top_level = {}
    for key_node, value_node in root.value:
        key = _scalar(key_node, "str")
        if key is None:
            raise CheckFileError(f"{path}:{_line(key_node)}: a top-level key must be a name, not {_kind(key_node)}")
        if key in top_level:
            raise CheckFileError(f"{path}:{_line(key_node)}: duplicate top-level key {key!r}")
        if key not in TOP_KEYS:
            raise CheckFileError(
                f"{path}:{_line(key_node)}: unknown top-level key {key_node.value!r} (allowed: corpus, questions, top)"
            )
        top_level[key] = value_node
    if "questions" not in top_level:
        raise CheckFileError(f"{path}: has no 'questions' list")
    questions = top_level["questions"]
    if not isinstance(questions, yaml.SequenceNode):
        raise CheckFileError(f"{path}:{_line(questions)}: 'questions' must be a list, not {_kind(questions)}")
    corpus, corpus_line = None, 0
    if "corpus" in top_level:
        corpus_line = _line(top_level["corpus"])
        value = _scalar(top_level["corpus"], "str")
        if not value:
            raise CheckFileError(f"{path}:{_line(top_level['corpus'])}: 'corpus' must be a path (a string)")
        corpus = value if os.path.isabs(value) else os.path.normpath(os.path.join(os.path.dirname(path), value))
    top = 1
    if "top" in top_level:
        value = _scalar(top_level["top"], "int")
        if value is None or not 1 <= value <= 100:
            # 100: the most `ask -k` shows.
            raise CheckFileError(f"{path}:{_line(top_level['top'])}: 'top' must be a whole number from 1 to 100")
        top = value
    cases = tuple(_case(path, i, node) for i, node in enumerate(questions.value, 1))
    if not cases:
        raise CheckFileError(f"{path}: the 'questions' list is empty")
    first_with: dict[str, Case] = {}
    for case in cases:
        if not case.id:
            continue
        if case.id in first_with:
            # Reports and JUnit name cases by id: two alike would be one.
            other = first_with[case.id]
            raise CheckFileError(
                f"{path}:{case.yaml_line}: {case.label}: duplicate id (also entry {other.index}, line {other.yaml_line})"
            )
        first_with[case.id] = case
    return CheckFile(path, cases, corpus, top, text=text, corpus_line=corpus_line)


def _case(path: str, index: int, node) -> Case:
    import yaml

    label = f"entry {index}"
    where = f"{path}:{_line(node)}: {label}"
    if not isinstance(node, yaml.MappingNode):
        raise CheckFileError(f"{where}: must be a mapping with a 'question', not {_kind(node)}")
    values = {}
    for key_node, value_node in node.value:
        if _scalar(key_node, "str") is None:
            raise CheckFileError(f"{path}:{_line(key_node)}: {label}: a key must be a name, not {_kind(key_node)}")
        if key_node.value in values:
            # YAML would silently keep the last one; a gate must not guess.
            raise CheckFileError(f"{path}:{_line(key_node)}: {label}: duplicate key {key_node.value!r}")
        values[key_node.value] = (key_node, value_node)
    ident = ""
    if "id" in values:
        id_node = values["id"][1]
        if not isinstance(id_node, yaml.ScalarNode) or id_node.tag not in (
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
        ):
            raise CheckFileError(f"{path}:{_line(id_node)}: {label}: 'id' must be a string, not {_kind(id_node)}")
        ident = id_node.value
        label = f"entry {index} (id {ident})"
        where = f"{path}:{_line(node)}: {label}"
    for key, (key_node, _) in values.items():
        if key not in ENTRY_KEYS:
            raise CheckFileError(
                f"{path}:{_line(key_node)}: {label}: unknown key {key!r} "
                "(allowed: question, id, document, line, answers, answerable)"
            )

    def bad(key: str, expected: str, tag: str = ""):
        value_node = values[key][1]
        found = _kind(value_node)
        if tag and isinstance(value_node, yaml.SequenceNode):
            # Name the list's first item that is not one: "a list" alone
            # does not say which, nor what it is.
            for n, item in enumerate(value_node.value, 1):
                if _scalar(item, tag) is None:
                    kind = _kind(item)
                    shown = f" ({item.value[:40]!r})" if isinstance(item, yaml.ScalarNode) else ""
                    if shown and shown[2:-1] in kind:
                        shown = ""  # said already: "'1:30', which YAML reads as..."
                    found = f"a list whose item {n} is {kind}{shown}"
                    break
        return CheckFileError(f"{path}:{_line(value_node)}: {label}: '{key}' must be {expected}, not {found}")

    if "question" not in values:
        raise CheckFileError(f"{where}: has no 'question'")
    question = _scalar(values["question"][1], "str")
    if question is None:
        raise bad("question", "a string")
    if not question.strip():
        raise CheckFileError(f"{path}:{_line(values['question'][1])}: {label}: 'question' is empty")
    try:
        # The rules `natoqa ask` applies, so a gate cannot pass a question
        # that the command line would refuse; but a block scalar (`|`)
        # legitimately holds line breaks.
        validate_question(question.replace("\r", " ").replace("\n", " "))
    except UsageError as exc:
        raise CheckFileError(f"{path}:{_line(values['question'][1])}: {label}: {exc}") from None
    document = ""
    if "document" in values:
        document = _scalar(values["document"][1], "str")
        if document is not None and not document.strip():
            raise CheckFileError(f"{path}:{_line(values['document'][1])}: {label}: 'document' is empty")
        if not document:
            raise bad("document", "a document id (a string)")
    lines: tuple[int, ...] = ()
    if "line" in values:
        line_node = values["line"][1]
        if isinstance(line_node, yaml.SequenceNode):
            items = [_scalar(n, "int") for n in line_node.value]
            if not items or any(v is None for v in items):
                raise bad("line", "a line number or a non-empty list of line numbers", "int")
            lines = tuple(items)
        else:
            value = _scalar(line_node, "int")
            if value is None:
                raise bad("line", "a line number or a list of line numbers")
            lines = (value,)
        if any(v < 1 for v in lines):
            raise CheckFileError(f"{path}:{_line(line_node)}: {label}: 'line' must be 1 or more")
    answers: tuple[str, ...] = ()
    if "answers" in values:
        answers_node = values["answers"][1]
        if not isinstance(answers_node, yaml.SequenceNode):
            raise bad("answers", "a list of strings")
        items = [_scalar(n, "str") for n in answers_node.value]
        if any(v is None for v in items):
            raise bad("answers", "a list of strings (quote a number or yes/no)", "str")
        if any(not v.strip() for v in items):
            # Every quote holds the empty string: the case could not fail.
            raise CheckFileError(f"{path}:{_line(answers_node)}: {label}: 'answers' holds an empty string")
        answers = tuple(items)
    answerable = True
    if "answerable" in values:
        value = _scalar(values["answerable"][1], "bool")
        if value is None:
            raise bad("answerable", "true or false")
        answerable = value
    if not answerable and answers:
        # An answer the case would never check: it passes when natoqa
        # abstains. A `document` and `line` (where the question seems to
        # point, checked to exist) and `answers: []` are SQuAD 2.0's form of
        # an unanswerable question, as ../shared/bench writes it.
        raise CheckFileError(
            f"{path}:{_line(values['answerable'][1])}: {label}: 'answerable: false' with "
            "'answers', which an unanswerable question cannot have"
        )
    if answerable and "answers" in values and not answers:
        # No text to hold: the quote was never checked, and the case could not fail.
        raise CheckFileError(f"{path}:{_line(values['answers'][1])}: {label}: 'answers' is an empty list")
    return Case(index, question, ident, document, lines, answers, answerable, _line(node))


def validate_against(check_file: CheckFile, corpus) -> None:
    """Every `document` is in the corpus and every `line` is in a passage of it."""
    single = corpus.documents[0] if len(corpus.documents) == 1 else None
    for case in check_file.cases:
        where = f"{check_file.path}:{case.yaml_line}: {case.label}"
        doc = None
        if case.document:
            doc = corpus.document(case.document)
            if doc is None:
                raise CheckFileError(f"{where}: document {case.document!r} is not in the corpus {corpus.root}")
        elif case.lines:
            doc = single
            if doc is None:
                raise CheckFileError(f"{where}: 'line' needs a 'document' in a corpus of several documents")
        for line in case.lines:
            if line > len(doc.lines):
                raise CheckFileError(f"{where}: line {line} does not exist in {doc.id} ({len(doc.lines)} lines)")
            if doc.passage_at(line) is None:
                raise CheckFileError(f"{where}: line {line} of {doc.id} is blank; give a line of the gold passage")


def normalize(text: str) -> str:
    """For comparing answers: folded quotes, collapsed white space, no case,
    composed (NFC: a decomposed "Mu\u0308ller" in the quote is "Müller")."""
    import unicodedata

    return unicodedata.normalize("NFC", " ".join(fold(text).split()).casefold())


def judge(case: Case, result: Result, top: int) -> tuple[bool, str]:
    """Whether a result satisfies a case, and if not, why."""
    if not case.answerable:
        if result.answered:
            return False, "expected no answer, but natoqa answered"
        return True, ""
    if not result.answered:
        return False, f"no answer ({result.reason})" if result.reason else "no answer"
    whys = []
    for answer in result.answers[:top]:
        why = _mismatch(case, answer)
        if not why:
            return True, ""
        whys.append(why)
    return False, whys[0]


def _mismatch(case: Case, answer: Answer) -> str:
    if case.document and answer.document != case.document:
        return f"wrong document ({answer.document})"
    if case.lines and not any(answer.passage.start_line <= n <= answer.passage.end_line for n in case.lines):
        return f"wrong passage (lines {answer.passage.start_line}-{answer.passage.end_line})"
    if case.answers:
        quote = normalize(answer.quote.text)
        if not any(normalize(a) in quote for a in case.answers):
            return "the quote holds none of the expected answers"
    return ""


@dataclass(frozen=True)
class FileReport:
    check_file: CheckFile
    corpus_root: str
    outcomes: tuple[Outcome, ...]
    seconds: float

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.passed


def run(check_file: CheckFile, index, progress=None, ranker=None) -> FileReport:
    """Answer every case of a validated file; `progress(n)` after each.
    With `ranker` (a natoqa.dense.DenseRanker, for --dense) it answers."""
    from natoqa.answer import ask, expect
    from natoqa.session import collect_if_due, collector_paused

    start = time.perf_counter()
    outcomes = []
    # A long file is a batch like `ask -`'s, its length known: what its
    # questions will need is loaded first, and they run without the cyclic
    # collector (see natoqa.session.collector_paused).
    expect(index, len(check_file.cases))
    with collector_paused(last=False):
        for case in check_file.cases:
            collect_if_due()
            began = time.perf_counter()
            if ranker is not None:
                result = ranker.ask(case.question, top=check_file.top)
            else:
                result = ask(index, case.question, top=check_file.top)
            passed, why = judge(case, result, check_file.top)
            outcomes.append(Outcome(case, passed, result, why, time.perf_counter() - began))
            if progress is not None:
                progress(1)
    return FileReport(check_file, index.corpus.root, tuple(outcomes), time.perf_counter() - start)


@dataclass(frozen=True)
class Recording:
    """The edits --record would make to one questions file."""

    new_text: str
    recorded: tuple[int, ...]  # entry indexes filled in
    skipped: tuple[str, ...]  # why some entries could not be filled in
    moved: str = ""  # the relative 'corpus' written for the new file's folder, if it changed


def record(check_file: CheckFile, report: FileReport, target: str | None = None) -> Recording:
    """Insert `document` and `line` into entries that lack them, as text.

    The new keys are written as lines right after the entry's `question`,
    so comments, order and formatting elsewhere stay exactly as they were.
    Entries written in flow style ({question: ...}) cannot be edited that
    way; they are skipped and named.
    """
    import yaml

    root = yaml.compose(check_file.text, Loader=yamltext.fast_loader())
    questions = next(v for k, v in root.value if k.value == "questions")
    lines = check_file.text.splitlines(keepends=True)
    newline = _newline(check_file.text)
    inserts: list[tuple[int, list[str]]] = []
    recorded, skipped = [], []
    for node, outcome in zip(questions.value, report.outcomes, strict=True):
        case = outcome.case
        if not case.answerable or (case.document and case.lines):
            continue
        if not outcome.result.answered:
            skipped.append(f"{case.label}: natoqa has no answer to record")
            continue
        if node.flow_style:
            skipped.append(f"{case.label}: written in flow style {{...}}; add document and line by hand")
            continue
        # The first answer the case accepts, of the `top` it is judged on:
        # the first answer alone could be in another document than the
        # entry names, or miss its answers, and the recorded file would
        # then fail (or, silently, name another passage).
        answer = next((a for a in outcome.result.answers[: check_file.top] if not _mismatch(case, a)), None)
        if answer is None:
            why = _mismatch(case, outcome.result.answers[0])
            skipped.append(f"{case.label}: no answer fits the entry ({why}); not recorded")
            continue
        if not case.document and _SURROGATE.search(answer.document):
            # A file name that is not UTF-8: no YAML file can hold its id.
            skipped.append(f"{case.label}: its document's file name is not UTF-8; a questions file cannot name it")
            continue
        key_node, value_node = next((k, v) for k, v in node.value if k.value == "question")
        # The entry's own column: its keys' column, but for an explicit
        # key (`? question`), which stands two further in.
        indent = " " * node.start_mark.column
        new = []
        if not case.document:
            new.append(f"{indent}document: {_yaml_string(answer.document)}{newline}")
        if not case.lines:
            new.append(f"{indent}line: {answer.quote.start_line}{newline}")
        end = value_node.end_mark
        at = end.line if end.column == 0 else end.line + 1
        inserts.append((at, new))
        recorded.append(case.index)
    moved = ""
    if recorded and target is not None:
        moved = _move_corpus(check_file, root, lines, target, skipped)
    if inserts and lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    for at, new in sorted(inserts, key=lambda item: item[0], reverse=True):
        lines[at:at] = new
    return Recording("".join(lines), tuple(recorded), tuple(skipped), moved)


def _move_corpus(check_file: CheckFile, root, lines: list[str], target: str, skipped: list[str]) -> str:
    """A relative `corpus:` names a folder from the questions file's own: in a
    file written elsewhere (`--record -o other/q.yaml`) it is rewritten, in
    lines, to name the same corpus from there. The new value, or ""."""
    node = next((v for k, v in root.value if k.value == "corpus"), None)
    if node is None or check_file.corpus is None or os.path.isabs(node.value):
        return ""
    here = os.path.dirname(os.path.abspath(target))
    if os.path.abspath(os.path.join(here, node.value)) == os.path.abspath(check_file.corpus):
        return ""
    start, end = node.start_mark, node.end_mark
    if start.line != end.line:
        skipped.append(f"'corpus' is written over several lines; make it name {check_file.corpus} by hand")
        return ""
    try:
        value = os.path.relpath(os.path.abspath(check_file.corpus), here)
    except ValueError:  # another drive (Windows): no relative path reaches it
        skipped.append(f"'corpus' cannot name {check_file.corpus} relative to {here}; make it absolute by hand")
        return ""
    line = lines[start.line]
    # YAML's columns do not count a byte order mark; the line holds it.
    shift = 1 if start.line == 0 and line.startswith("\ufeff") else 0
    lines[start.line] = line[: start.column + shift] + _yaml_string(value) + line[end.column + shift :]
    return value


def _newline(text: str) -> str:
    """The line end most of text's lines have: new lines match the file's."""
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    if crlf > lf and crlf >= cr:
        return "\r\n"
    return "\r" if cr > lf and cr > crlf else "\n"  # "\n" on a tie or none


# What a YAML file cannot hold raw (PyYAML refuses DEL, the C1 range,
# U+FFFE and U+FFFF) or reads as a line break, folded inside quotes (NEL,
# U+2028, U+2029): written as escapes. A surrogate (a name that is not
# UTF-8) has no escape libyaml reads back: record() leaves such ids out.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _yaml_string(value: str) -> str:
    """value as a YAML scalar that reads back as that string: plain when it
    does ("birds"), else JSON-quoted, which YAML reads as a double-quoted
    string ("2024", "no", "a #b" would read as a number, false, "a"), with
    the characters YAML cannot hold raw escaped (a file named "bud\x7fget")."""
    import json

    import yaml

    try:
        if not _YAML_UNSAFE.search(value) and yaml.safe_load(f"k: {value}") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    from natoqa.render import unicode_escape

    return _YAML_UNSAFE.sub(unicode_escape, json.dumps(value, ensure_ascii=False))


def write_atomically(path: str, text: str) -> None:
    """Write a whole text file atomically, keeping its permissions; one
    with other hard links or another owner is written into (see _replace),
    a read-only one refused.

    A FIFO, a terminal or a pipe (`--junit /dev/stdout | ...`) is written
    in place: replacing it would put a plain file where the device or pipe
    was, and leave its reader waiting."""
    import stat

    found = _write_target(path)
    try:
        if found is not None and not stat.S_ISREG(found.st_mode):
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
            return
        _replace(path, found, text)
    except BrokenPipeError:
        raise  # `--junit /dev/stdout | head`: the reader went away (exit 141)
    except OSError as exc:  # no such folder, no permission, a full disk
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _write_target(path: str) -> os.stat_result | None:
    """The stat of a file natoqa is to write, None when it is new;
    UsageError for a folder, a symlink loop or a path through a file."""
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise UsageError(f"{path}: is a folder; give a file path")
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink loop, a path through a file
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


def refuse_unwritable(path: str) -> None:
    """UsageError, before the run, for a report or a new questions file
    write_atomically would refuse after it: a folder, a path into a folder
    that is missing or is no folder, a read-only file. Found only once the
    answers were in, they cost a run that can take minutes (--dense, a
    large corpus) and gave nothing for it. write_atomically still checks:
    the disk can change while the run goes on."""
    found = _write_target(path)
    if found is not None:
        refuse_read_only(path, found)
        return
    # A new file (or a dangling symlink's target): its folder must be one.
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        try:
            os.stat(folder)
        except OSError as exc:
            raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise UsageError(f"{path}: cannot write: {folder} is not a folder")


def _replace(path: str, found: os.stat_result | None, text: str) -> None:
    """Put the new text in the regular file at path (`found`, its stat, None if new)."""
    from natoqa.store import write_atomic

    if found is not None and is_standard_stream(found):
        # `--junit /dev/stdout > report.txt`: replacing the file would drop
        # the report natoqa writes to standard output.
        raise UsageError(f"{path}: is natoqa's standard output or error; give the report a file of its own")
    # Through a symlink to the file it names: replacing the link itself
    # would silently detach the user's file from it.
    target = Path(os.path.realpath(path))
    if target.exists():
        st = target.stat()
        refuse_read_only(path, st)
        if st.st_nlink > 1 or st.st_uid != _euid():
            # A rename would give the path a new file: its other hard
            # links would keep the old text, and (natoqa run as root, or by
            # a group) its owner would become natoqa's user.
            _write_through(path, target, text.encode("utf-8"))
            return
        mode = st.st_mode & 0o7777
    else:
        # A new report or questions file gets the permissions any new file
        # would (the temporary file's are 0600: a CI's artifact reader
        # could not open it).
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    write_atomic(target, [text.encode("utf-8")], mode)


def refuse_read_only(path: str, found: os.stat_result) -> None:
    """UsageError for a file its owner made read-only: a rename into its
    folder would replace it all the same (and root writes any file), so
    the mode is looked at, not only what the system would allow."""
    import stat

    if stat.S_ISREG(found.st_mode) and (not found.st_mode & 0o222 or not os.access(path, os.W_OK)):
        raise UsageError(f"{path}: cannot write: the file is read-only; make it writable first")


def refuse_not_rewritable(path: str, found: os.stat_result) -> None:
    """UsageError for a questions file --in-place cannot rewrite: a
    read-only one, or one that is no file (`/dev/stdin`, `<(cat q.yaml)`).
    A pipe's text was read to its end: written back into it, the recorded
    text went to no reader and was lost while natoqa said it was recorded,
    and a text over the pipe's buffer (64 KB) blocked natoqa for ever."""
    import stat

    if not stat.S_ISREG(found.st_mode):
        raise UsageError(f"{path}: is not a regular file (a pipe or a device); --in-place rewrites a file: use -o NEW")
    refuse_read_only(path, found)


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def _write_through(path: str, target: Path, data: bytes) -> None:
    """Write data into the file itself, keeping its inode: its hard links,
    owner and permissions. Not atomic, so the whole new text is first
    written and synced beside it, and removed once the file holds it; if
    the file cannot be written in full, the error names that copy."""
    import tempfile

    fd, copy = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(copy)
        raise
    try:
        # Not truncated first: a failed write leaves the file's own text
        # after what was written, not nothing.
        with open(target, "r+b") as f:
            f.write(data)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}; its new text is in {copy}") from None
    os.unlink(copy)


def is_standard_stream(found: os.stat_result, fds=(1, 2)) -> bool:
    """Whether `found` is this process's stdout or stderr (of `fds`)."""
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (found.st_dev, found.st_ino):
            return True
    return False
