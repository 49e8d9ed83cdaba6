"""A fuzz campaign of natoqa's command-line entry point (issue 6): `make fuzz`.

Hypothesis draws whole command lines (commands, options and values, sane
and not), generated corpora, questions files and stdin bytes, and runs them
through the CLI in-process. For every run:

- nothing but SystemExit leaves the entry point (no traceback, ever);
- the exit code is a documented one (0, 1, 2, 3);
- every stderr line is a `natoqa: ...` line, and a failure ends in exactly
  one `natoqa: error: ...` line with nothing on stdout;
- --json / --jsonl output parses;
- the corpus folder and the questions file are byte for byte unchanged
  (unless --record --in-place was asked for).

Usage:  python bench/fuzz.py [--examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.test_fuzz's corpus strategies

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tests.test_fuzz import any_char, corpora, questions, write  # noqa: E402

DOCUMENTED = {0, 1, 2, 3}
codes: collections.Counter = collections.Counter()
commands_seen: collections.Counter = collections.Counter()

flag = st.sampled_from(["--json", "--jsonl", "-q", "--quiet", "--no-color", "--explain", "--no-cache", "-h"])
number = st.one_of(st.integers(-3, 120).map(str), st.sampled_from(["", "x", "1e3", "0x10", "٣", " 2"]))
text_arg = st.one_of(questions, st.text(any_char, max_size=20), st.sampled_from(["-", "--", "-k", "--corpus"]))

CHECK_TEMPLATES = [
    "questions:\n  - question: {q}\n",
    "questions:\n  - question: {q}\n    answers: [{q}]\n    document: a\n    line: 3\n",
    "questions:\n  - question: {q}\n    answerable: false\n",
    "top: 2\nquestions:\n  - question: {q}\n  - question: {q}\n    id: two\n",
    "corpus: corpus\nquestions:\n  - question: {q}\n",
    "{q}\n",
    "questions: [{q}]\n",
    "questions:\n  - &x question: {q}\n  - *x\n",
]


@st.composite
def command_lines(draw):
    """(argv, stdin bytes) with {corpus} and {questions} placeholders."""
    command = draw(st.sampled_from(["ask", "ask", "ask", "docs", "show", "check", "none", "bogus", "--version"]))
    corpus = draw(st.sampled_from(["{corpus}", "{corpus}", "{corpus}/a.txt", "{missing}", "", None]))
    args: list[str] = []
    if command == "ask":
        args = ["ask", *draw(st.lists(text_arg, max_size=3))]
        for _ in range(draw(st.integers(0, 3))):
            args.insert(draw(st.integers(1, len(args))), draw(flag))
        if draw(st.booleans()):
            args += ["-k", draw(number)]
    elif command == "docs":
        args = ["docs", *draw(st.lists(st.sampled_from(["--json", "-h", "extra"]), max_size=2))]
    elif command == "show":
        ref = draw(
            st.one_of(
                st.builds(
                    lambda d, line, col: f"{d}:{line}" + (f":{col}" if col else ""),
                    st.sampled_from(["a", "b", "{corpus}/a.txt", "nope", ""]),
                    number,
                    st.one_of(st.just(""), number),
                ),
                st.text(any_char, max_size=20),
            )
        )
        args = ["show", ref]
    elif command == "check":
        args = ["check", "{questions}"]
        args += draw(
            st.lists(
                st.sampled_from(
                    [
                        "--json",
                        "--record",
                        "--in-place",
                        "--no-cache",
                        "--no-color",
                        "-o",
                        "{new}",
                        "--min-pass-rate",
                        "0.5",
                        "--junit",
                        "{junit}",
                    ]
                ),
                max_size=4,
            )
        )
    elif command == "bogus":
        args = [draw(st.text(any_char, min_size=1, max_size=10))]
    elif command == "--version":
        args = ["--version"]
    if corpus is not None and command in ("ask", "docs", "show", "check"):
        args += ["--corpus", corpus]
    stdin = draw(
        st.one_of(
            st.lists(questions, max_size=4).map(lambda qs: "\n".join(qs).encode("utf-8", "surrogatepass")),
            st.binary(max_size=300),
        )
    )
    template = draw(st.sampled_from(CHECK_TEMPLATES))
    check_text = template.format(q=json.dumps(draw(questions), ensure_ascii=False))
    return args, stdin, check_text


def snapshot(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_one(corpus_case, line_case) -> None:
    from click.testing import CliRunner

    from natoqa.cli import cli

    files, index_text = corpus_case
    argv, stdin, check_text = line_case
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "corpus"
        root.mkdir()
        write(root, files, index_text)
        qfile = base / "questions.yaml"
        qfile.write_text(check_text, encoding="utf-8", errors="surrogatepass")
        names = {
            "{corpus}": str(root),
            "{missing}": str(base / "missing"),
            "{questions}": str(qfile),
            "{new}": str(base / "new.yaml"),
            "{junit}": str(base / "junit.xml"),
        }
        args = []
        for a in argv:
            for k, v in names.items():
                a = a.replace(k, v)
            args.append(a)
        before = snapshot(root), qfile.read_bytes()
        os.environ["NATOQA_CACHE_DIR"] = str(base / "cache")
        result = CliRunner().invoke(cli, args, input=stdin, prog_name="natoqa")
        after = snapshot(root), qfile.read_bytes()

    codes[result.exit_code] += 1
    known = ("ask", "docs", "show", "check", "--version")
    commands_seen[(argv[0] if argv[0] in known else "(unknown command)") if argv else "(none)"] += 1
    where = f"argv={args!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{where}: {type(result.exception).__name__} escaped: {result.exception}") from (
            result.exception
        )
    assert result.exit_code in DOCUMENTED, f"{where}: exit code {result.exit_code}"
    lines = result.stderr.splitlines()
    assert all(ln.startswith("natoqa: ") for ln in lines), f"{where}: stderr {result.stderr!r}"
    errors = [ln for ln in lines if ln.startswith("natoqa: error: ")]
    if result.exit_code in (2, 3) and "check" not in args[:1]:
        # A batch reports each bad line and answers the rest; otherwise a
        # failure is one error line, the last, with nothing on stdout.
        if "-" not in args and not errors[:-1]:
            assert errors and errors[-1] == lines[-1], f"{where}: stderr {result.stderr!r}"
    # Past "--" every argument is a word of the question, not an option.
    options = args[: args.index("--")] if "--" in args else args
    if result.exit_code in (0, 1) and "-h" not in options:
        if "--jsonl" in options and "--json" not in options and "-q" not in options and "--quiet" not in options:
            for out_line in result.stdout.splitlines():
                json.loads(out_line)
        elif "--json" in options and "--jsonl" not in options and "-q" not in options and "--quiet" not in options:
            json.loads(result.stdout)
    assert after[0] == before[0], f"{where}: the corpus folder changed"
    if not ("--record" in args and "--in-place" in args):
        assert after[1] == before[1], f"{where}: the questions file changed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    opts = parser.parse_args()
    os.environ.pop("NATOQA_CORPUS", None)

    @settings(
        max_examples=opts.examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(corpus_case=corpora(), line_case=command_lines())
    def campaign(corpus_case, line_case):
        run_one(corpus_case, line_case)

    if opts.seed is not None:
        campaign = seed(opts.seed)(campaign)
    started = time.perf_counter()
    campaign()
    seconds = time.perf_counter() - started
    runs = sum(codes.values())
    print(f"natoqa CLI fuzz: {runs} runs in {seconds:.1f} s, no failure")
    print("  exit codes: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
    print("  commands:   " + ", ".join(f"{c}: {n}" for c, n in commands_seen.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
