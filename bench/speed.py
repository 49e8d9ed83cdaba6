"""natoqa speed and scale (issue 5): start-up, batch throughput, large corpora.

    python bench/speed.py                 # everything (what `make bench-speed` runs)
    python bench/speed.py --quick         # fewer runs, scale up to 10,000 passages
    python bench/speed.py --sizes 1000,10000 --runs 5 --save bench/.work/after.json

Every figure is wall-clock time of a fresh `natoqa` process, as a user sees
it, so it includes Python's own start-up. The machine is shared and noisy:
each figure is the median of several runs, and start-up is reported as a
ratio to the import floor measured in the same run, interleaved with it.

- start-up: `natoqa ask "<question>" --json` on the seed corpus (warm cache,
  and with --no-cache), against the import floor
  `python -c "import click, rich, yaml, rank_bm25, nltk.stem.snowball"`;
- the same in a throwaway venv that also has scipy (bench/.work/venv-scipy),
  where `import nltk` pulls in scipy.stats;
- batch: 2,000 questions through `natoqa ask - --jsonl`, minus the time for
  one question, so process start-up and index loading are not counted (the
  two run in turns; the median of the differences);
  with natoqa's default worker processes (one a CPU, natoqa.workers), and
  again in one process (`--jobs 1`), shown beside it without a target;
  on the seed corpus (seeds/questions.yaml, cycled) and on the whole SQuAD
  2.0 dev corpus (2,000 of its questions, evenly spread);
- instructions: what a question costs in CPU instructions, counted by
  valgrind's callgrind in one process (500 seed questions, 300 SQuAD 2.0
  ones, minus one; hash seed 0). Unlike the times, the same code gives the
  same count within 0.1% however busy the machine is: the figure to compare
  changes by. 300 SQuAD questions stay on the first stage's dict walk; a
  batch told of 1,000 or more switches to the arrays at once (answer.expect),
  as the 2,000-question batch does, so SQuAD is counted over 1,000 too: the
  path the batch figure measures. Skipped when valgrind is not installed;
- scale: corpora of 1k, 10k and 100k passages made of SQuAD 1.1 dev
  articles repeated under varied document ids (generated in bench/.work/,
  never committed): first answer with an empty cache (build and write the
  index), first answer with a warm cache, batch throughput, and peak memory
  (max RSS of the natoqa process, from wait4).

The benchmark data lives outside the project, in ../shared/bench relative
to the repository root. Without it the script says so and exits 0, as
quality.py does (it would otherwise spend a minute or more, and install
scipy into bench/.work, measuring the seed corpus alone); --without-data
measures what needs none: start-up, the scipy venv, the seed corpus's
batch and instructions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
SQUAD2 = BENCH / "squad-dev"
SQUAD1 = BENCH / "squad-dev-v1.1"
SEEDS = ROOT / "seeds"
WORK = ROOT / "bench" / ".work"
VENV_BIN = Path(sys.executable).parent

QUESTION = "How many troops is the U.S. sending to Poland?"
FLOOR = "import click, rich, yaml, rank_bm25, nltk.stem.snowball"
BATCH = 2_000

# The targets, checked in the table's last column.
STARTUP_RATIO = 0.9
SEED_QPS = 10_000
SQUAD2_QPS = 3_000
BIG_WARM_RATIO = 1.5
BIG_QPS = 100
BIG_BUILD_S = 60
BIG_PEAK_MB = 2048


# --- running processes -------------------------------------------------------


def run(cmd, stdin: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process; raises if it failed."""
    stdin_f = open(stdin, "rb") if stdin else subprocess.DEVNULL
    err = tempfile.TemporaryFile()
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin_f, stdout=subprocess.DEVNULL, stderr=err, env=env)
        # wait4 gives this child's own rusage; getrusage(RUSAGE_CHILDREN)
        # would be the maximum over every child so far.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):  # 1: some question had no answer
            err.seek(0)
            message = err.read().decode("utf-8", "replace").strip().splitlines()
            raise SystemExit(f"speed.py: {' '.join(map(str, cmd))[:200]} failed ({proc.returncode}): {message[-1:]}")
        return seconds, usage.ru_maxrss / 1024
    finally:
        if stdin:
            stdin_f.close()
        err.close()


def median_runs(cmd, runs: int, **kw) -> tuple[float, float]:
    results = [run(cmd, **kw) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def interleaved(cmds: dict[str, list], runs: int, envs: dict[str, dict] | None = None) -> dict[str, float]:
    """Median seconds of each command, run in turns so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run(cmd, env=(envs or {}).get(name))[0])
    return {name: statistics.median(t) for name, t in times.items()}


def env_with(cache: Path) -> dict:
    env = dict(os.environ)
    env["NATOQA_CACHE_DIR"] = str(cache)
    env.pop("NATOQA_CORPUS", None)
    # natoqa runs as from a user's shell: PYTHONUNBUFFERED (set in some
    # sandboxes and CI images) would make every answer its own write().
    env.pop("PYTHONUNBUFFERED", None)
    return env


def write_questions(questions: list[str], n: int, name: str) -> Path:
    path = WORK / f"{name}-{n}.txt"
    cycled = [questions[i % len(questions)] for i in range(n)]
    path.write_text("".join(q + "\n" for q in cycled), encoding="utf-8")
    return path


def batch_qps(natoqa: str, corpus: list[str], questions: list[str], env: dict, runs: int, name: str, jobs: int = 0):
    """(questions per second, peak MB): time for BATCH minus time for one.
    jobs 0 is natoqa's default (a worker process a CPU), 1 one process."""
    one = write_questions(questions, 1, name)
    many = write_questions(questions, BATCH, name)
    cmd = [natoqa, "ask", "-", "--jsonl", "--jobs", str(jobs), *corpus]
    run(cmd, stdin=one, env=env)  # warm the cache
    # One question and the batch in turns, and the median of each turn's
    # difference: this machine's speed drifts by a third from minute to
    # minute, and two medians taken minutes apart carried that drift.
    spent_each, peak = [], 0.0
    for _ in range(runs):
        single = run(cmd, stdin=one, env=env)[0]
        seconds, mb = run(cmd, stdin=many, env=env)
        spent_each.append(seconds - single)
        peak = max(peak, mb)
    spent = statistics.median(spent_each)
    return (BATCH - 1) / spent if spent > 0 else float("inf"), peak


# --- questions and corpora ---------------------------------------------------

# The bench question files write every string as a JSON-style quoted YAML
# scalar (see their README), so a line pattern reads them far faster than a
# YAML parser would.
_QUESTION_LINE = re.compile(r'^\s*(?:-\s+)?question:\s*(".*")\s*$')


def read_questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _QUESTION_LINE.match(line)
        if match:
            out.append(json.loads(match.group(1)))
    return out


def spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def squad1_articles() -> list[tuple[str, str, list[str]]]:
    """(slug, title, paragraphs) of each SQuAD 1.1 dev article."""
    out = []
    index = (SQUAD1 / "corpus" / "INDEX.md").read_text(encoding="utf-8")
    for match in re.finditer(r"^- \[(.*)\]\((.*)\.txt\)$", index, re.M):
        title, slug = match.group(1), match.group(2)
        lines = (SQUAD1 / "corpus" / f"{slug}.txt").read_text(encoding="utf-8").split("\n")
        out.append((slug, title, [line for line in lines[2:] if line.strip()]))
    return out


def scale_corpus(n_passages: int) -> Path:
    """A corpus of exactly n_passages passages: SQuAD 1.1 articles repeated.

    Each copy is its own document (r001-normans, r002-normans, ...); the
    title line of a file is a passage too, as natoqa counts them.
    """
    root = WORK / f"scale-{n_passages}"
    stamp = root / ".complete"
    if stamp.is_file():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    articles = squad1_articles()
    entries, count, rep = [], 0, 0
    while count < n_passages:
        rep += 1
        for slug, title, paragraphs in articles:
            if count >= n_passages:
                break
            room = n_passages - count - 1
            body = paragraphs[:room]
            name = f"r{rep:03d}-{slug}"
            (root / f"{name}.txt").write_text(f"{title}\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")
            entries.append(f"- [{title} ({rep})]({name}.txt)\n")
            count += 1 + len(body)
    (root / "INDEX.md").write_text(
        f"# Scale corpus, {n_passages:,} passages\n\nSQuAD 1.1 dev articles, repeated.\n\n" + "".join(entries),
        encoding="utf-8",
    )
    stamp.write_text("")
    return root


# --- the scipy venv ----------------------------------------------------------


def scipy_venv() -> Path | None:
    """bin/ of a throwaway venv with natoqa (editable) and scipy, or None."""
    venv = WORK / "venv-scipy"
    stamp = venv / ".installed"
    if stamp.is_file():
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    print("speed.py: creating bench/.work/venv-scipy (natoqa + scipy) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(ROOT), "scipy"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        last = detail.decode("utf-8", "replace").strip().splitlines()[-1:] if detail else [str(exc)]
        print(f"speed.py: skipping the scipy section: cannot install scipy: {' '.join(last)}", file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        return None
    stamp.write_text("")
    return venv / "bin"


# --- the report --------------------------------------------------------------


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []
        self.data: dict[str, float] = {}

    def section(self, title: str) -> None:
        self.rows.append((title, "", "", ""))

    def add(self, key: str, label: str, value: float, fmt: str, target: str = "", ok: bool | None = None):
        self.data[key] = value
        verdict = "" if ok is None else ("ok" if ok else "MISS")
        self.rows.append(("  " + label, fmt.format(value), target, verdict))
        print(f"  {label}: {fmt.format(value)} {target} {verdict}", file=sys.stderr)

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows + [("measure", "value", "target", "")]) for i in range(4)]
        header = ("measure", "value", "target", "")
        line = "  ".join("-" * w for w in widths)
        print(line)
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        print(line)
        for row in self.rows:
            if not row[1]:
                print(row[0])
                continue
            print(f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].ljust(widths[2])}  {row[3]}".rstrip())
        print(line)


def startup(table: Table, bin_dir: Path, cache: Path, runs: int, label: str, key: str) -> None:
    python, natoqa = str(bin_dir / "python"), str(bin_dir / "natoqa")
    env = env_with(cache)
    ask = [natoqa, "ask", QUESTION, "--json"]
    run(ask, env=env)  # warm the cache
    t = interleaved(
        {"floor": [python, "-c", FLOOR], "warm": ask, "nocache": [*ask, "--no-cache"]},
        runs,
        envs={"warm": env, "nocache": env},
    )
    table.section(label)
    table.add(f"{key}.floor_ms", "import floor (ms)", t["floor"] * 1000, "{:.0f}")
    table.add(f"{key}.ask_ms", "ask --json, warm cache (ms)", t["warm"] * 1000, "{:.0f}")
    ratio = t["warm"] / t["floor"]
    table.add(f"{key}.ratio", "  ratio to floor", ratio, "{:.2f}", f"<= {STARTUP_RATIO}", ratio <= STARTUP_RATIO)
    table.add(f"{key}.nocache_ms", "ask --json --no-cache (ms)", t["nocache"] * 1000, "{:.0f}")
    table.add(f"{key}.nocache_ratio", "  ratio to floor", t["nocache"] / t["floor"], "{:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each; scale sizes 1,000 and 10,000")
    parser.add_argument("--runs", type=int, help="runs per median (default 7, --quick 3)")
    parser.add_argument("--sizes", help="scale corpus sizes in passages, comma separated (default 1000,10000,100000)")
    parser.add_argument(
        "--skip", default="", help="sections to skip, comma separated: startup,scipy,batch,instructions,scale"
    )
    parser.add_argument("--scipy-venv", help="bin/ folder of an existing venv with natoqa and scipy to use instead")
    parser.add_argument("--save", help="also write the figures as JSON to this file")
    parser.add_argument(
        "--without-data",
        action="store_true",
        help="without ../shared/bench, measure what needs no data instead of skipping",
    )
    args = parser.parse_args(argv)
    if not (SQUAD2.is_dir() and SQUAD1.is_dir()) and not args.without_data:
        print(
            f"speed.py: benchmark data not found at {BENCH}; skipping"
            " (--without-data measures start-up and the seed corpus alone)",
            file=sys.stderr,
        )
        return 0
    runs = args.runs or (3 if args.quick else 7)
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    natoqa = str(VENV_BIN / "natoqa")
    table = Table()
    cache_root = Path(tempfile.mkdtemp(prefix="cache-", dir=WORK))
    try:
        if "startup" not in skip:
            startup(table, VENV_BIN, cache_root / "startup", runs, "start-up, seed corpus", "startup")
        if "scipy" not in skip:
            scipy_bin = Path(args.scipy_venv) if args.scipy_venv else scipy_venv()
            if scipy_bin is not None:
                startup(table, scipy_bin, cache_root / "scipy", runs, "start-up, with scipy installed", "scipy")
        if "batch" not in skip:
            bench_batch(table, natoqa, cache_root / "batch", max(3, runs // 2))
        if "instructions" not in skip:
            bench_instructions(table, cache_root / "instructions")
        if "scale" not in skip:
            bench_scale(table, natoqa, cache_root, sizes, runs)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    table.print()
    if args.save:
        Path(args.save).write_text(json.dumps(table.data, indent=2) + "\n", encoding="utf-8")
    return 0


def bench_batch(table: Table, natoqa: str, cache: Path, runs: int) -> None:
    import yaml

    env = env_with(cache)
    seed_questions = [q["question"] for q in yaml.safe_load((SEEDS / "questions.yaml").read_text("utf-8"))["questions"]]
    table.section(f"batch, {BATCH:,} questions, start-up not counted")
    qps, _ = batch_qps(natoqa, [], seed_questions, env, runs, "seed")
    table.add("batch.seed_qps", "seed corpus (q/s)", qps, "{:,.0f}", f">= {SEED_QPS:,}", qps >= SEED_QPS)
    table.add("batch.seed_ms", "  ms per question", 1000 / qps, "{:.3f}")
    one, _ = batch_qps(natoqa, [], seed_questions, env, runs, "seed", jobs=1)
    table.add("batch.seed_qps_j1", "  one process, --jobs 1 (q/s)", one, "{:,.0f}")
    if not SQUAD2.is_dir():
        print(f"speed.py: {SQUAD2} not found; skipping the SQuAD 2.0 batch", file=sys.stderr)
        return
    questions = spread(read_questions(SQUAD2 / "questions.yaml"), BATCH)
    qps, _ = batch_qps(natoqa, ["--corpus", str(SQUAD2 / "corpus")], questions, env, runs, "squad2")
    table.add(
        "batch.squad2_qps",
        "SQuAD 2.0 dev, 1,204 passages (q/s)",
        qps,
        "{:,.0f}",
        f">= {SQUAD2_QPS:,}",
        qps >= SQUAD2_QPS,
    )
    table.add("batch.squad2_ms", "  ms per question", 1000 / qps, "{:.3f}")
    one, _ = batch_qps(natoqa, ["--corpus", str(SQUAD2 / "corpus")], questions, env, runs, "squad2", jobs=1)
    table.add("batch.squad2_qps_j1", "  one process, --jobs 1 (q/s)", one, "{:,.0f}")


ICOUNT_SEED, ICOUNT_SQUAD, ICOUNT_SQUAD_LONG = 500, 300, 1_000


def instructions(python: str, corpus: list[str], questions: list[str], n: int, env: dict, name: str) -> float:
    """CPU instructions a question in one process: callgrind's count for n
    questions minus its count for one, over n - 1 (the cache warm)."""
    one = write_questions(questions, 1, f"{name}-icount")
    many = write_questions(questions, n, f"{name}-icount")
    ask = [python, "-m", "natoqa", "ask", "-", "--jsonl", "--jobs", "1", *corpus]
    env = dict(env, PYTHONHASHSEED="0")
    run(ask, stdin=one, env=env)  # warm the cache
    counts = []
    for path in (many, one):
        with open(path, "rb") as stdin:
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *ask],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
        found = re.search(rb"Collected : (\d+)", done.stderr)
        if done.returncode not in (0, 1) or not found:
            raise SystemExit(f"speed.py: callgrind failed ({done.returncode}) on {name}")
        counts.append(int(found.group(1)))
    return (counts[0] - counts[1]) / (n - 1)


def bench_instructions(table: Table, cache: Path) -> None:
    import yaml

    if shutil.which("valgrind") is None:
        print("speed.py: valgrind not found; skipping the instruction counts", file=sys.stderr)
        return
    print("speed.py: counting instructions (callgrind, about 3 minutes) ...", file=sys.stderr)
    env = env_with(cache)
    python = str(VENV_BIN / "python")
    table.section("instructions a question, one process (callgrind)")
    seed_questions = [q["question"] for q in yaml.safe_load((SEEDS / "questions.yaml").read_text("utf-8"))["questions"]]
    seed = instructions(python, [], seed_questions, ICOUNT_SEED, env, "seed")
    table.add("instructions.seed", f"seed corpus ({ICOUNT_SEED} questions)", seed, "{:,.0f}")
    if SQUAD2.is_dir():
        spread_out = spread(read_questions(SQUAD2 / "questions.yaml"), BATCH)
        corpus = ["--corpus", str(SQUAD2 / "corpus")]
        squad = instructions(python, corpus, spread_out[:ICOUNT_SQUAD], ICOUNT_SQUAD, env, "squad2")
        table.add("instructions.squad2", f"SQuAD 2.0 dev ({ICOUNT_SQUAD} questions)", squad, "{:,.0f}")
        long = spread_out[::2][:ICOUNT_SQUAD_LONG]
        squad = instructions(python, corpus, long, ICOUNT_SQUAD_LONG, env, "squad2-long")
        table.add(
            "instructions.squad2_long", f"SQuAD 2.0 dev ({ICOUNT_SQUAD_LONG:,}, the batch's arrays)", squad, "{:,.0f}"
        )


def bench_scale(table: Table, natoqa: str, cache_root: Path, sizes: list[int], runs: int) -> None:
    if not SQUAD1.is_dir():
        print(f"speed.py: {SQUAD1} not found; skipping the scale section", file=sys.stderr)
        return
    questions = spread(read_questions(SQUAD1 / "questions.yaml"), BATCH)
    floor = statistics.median(run([str(VENV_BIN / "python"), "-c", FLOOR])[0] for _ in range(runs))
    table.section(f"scale: SQuAD 1.1 passages repeated (import floor {floor * 1000:.0f} ms)")
    previous: dict[str, float] = {}
    for n in sizes:
        print(f"speed.py: scale {n:,} passages ...", file=sys.stderr)
        corpus = scale_corpus(n)
        env = env_with(cache_root / f"scale-{n}")
        ask = [natoqa, "ask", QUESTION, "--json", "--corpus", str(corpus)]
        big = n >= 100_000
        build_s, build_mb = run(ask, env=env)
        warm_s, warm_mb = median_runs(ask, runs, env=env)
        qps, batch_mb = batch_qps(natoqa, ["--corpus", str(corpus)], questions, env, max(3, runs // 2), f"scale{n}")
        k, row = f"scale.{n}", f"{n:>7,}:"

        def note(name: str, value: float, target: str = "", n=n, big=big) -> str:
            """The target (at 100k) and the growth since the previous size."""
            before, size = previous.get(name), previous.get("n")
            previous[name] = value
            grew = f"x{value / before:.1f} for x{n / size:.0f} passages" if before else ""
            return "; ".join(filter(None, [target if big else "", grew]))

        table.add(
            f"{k}.build_s",
            f"{row} first answer, empty cache (s)",
            build_s,
            "{:.2f}",
            note("build", build_s, f"< {BIG_BUILD_S} s"),
            build_s < BIG_BUILD_S if big else None,
        )
        table.add(
            f"{k}.build_mb",
            f"{row}   peak memory (MB)",
            build_mb,
            "{:.0f}",
            note("build_mb", build_mb, f"< {BIG_PEAK_MB} MB"),
            build_mb < BIG_PEAK_MB if big else None,
        )
        ratio = warm_s / floor
        table.add(f"{k}.warm_ms", f"{row} first answer, warm cache (ms)", warm_s * 1000, "{:.0f}", note("warm", warm_s))
        table.add(
            f"{k}.warm_ratio",
            f"{row}   ratio to floor",
            ratio,
            "{:.2f}",
            f"<= {BIG_WARM_RATIO}" if big else "",
            ratio <= BIG_WARM_RATIO if big else None,
        )
        table.add(f"{k}.warm_mb", f"{row}   peak memory (MB)", warm_mb, "{:.0f}", note("warm_mb", warm_mb))
        table.add(
            f"{k}.qps",
            f"{row} batch (q/s)",
            qps,
            "{:,.0f}",
            note("ms", 1000 / qps, f">= {BIG_QPS}"),
            qps >= BIG_QPS if big else None,
        )
        table.add(f"{k}.ms", f"{row}   ms per question", 1000 / qps, "{:.2f}")
        one, _ = batch_qps(natoqa, ["--corpus", str(corpus)], questions, env, max(3, runs // 2), f"scale{n}", jobs=1)
        table.add(f"{k}.qps_j1", f"{row}   one process, --jobs 1 (q/s)", one, "{:,.0f}")
        table.add(f"{k}.batch_mb", f"{row}   peak memory (MB)", batch_mb, "{:.0f}", note("batch_mb", batch_mb))
        previous["n"] = n


if __name__ == "__main__":
    sys.exit(main())
