"""The Makefile and the benchmark scripts, as a newcomer runs them.

The Makefile's targets run against a stand-in virtual environment (VENV=
a folder in tmp_path whose bin/ holds scripts that print their arguments),
so no test creates a venv or installs anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def make_env(**extra: str) -> dict:
    """The environment, clear of the make that may run the suite."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "QUESTION")}
    return {**clean, **extra}


def make(*args: str) -> subprocess.CompletedProcess:
    """`make -s ARGS` in the repository."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        env=make_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    """A set-up .venv as far as make can tell: its stamp, and a natoqa that
    prints each argument on a line of its own and a python that does nothing."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, body in {"natoqa": 'printf "%s\\n" "$@"', "python": "exit 0"}.items():
        script = venv / "bin" / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    (venv / ".installed").touch()
    return venv


@needs_make
@pytest.mark.parametrize(
    "question",
    [
        'Who is "Jens" Stoltenberg?',
        "What does Putin's `touch {marker}` want?",
        "What does $(touch {marker}) cost?",
        "Is $HOME or $$HOME or ${{HOME}} asked as typed?",
        "a first line\nand a second",
        "it's 'quoted'; echo injected",
    ],
)
def test_make_run_asks_the_question_as_typed_and_runs_none_of_it(fake_venv, tmp_path, question):
    marker = tmp_path / "ran"
    question = question.format(marker=marker)
    done = make("run", f"VENV={fake_venv}", f"QUESTION={question}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ask\n{question}\n"
    assert not marker.exists()


@needs_make
def test_make_run_asks_the_default_question(fake_venv):
    done = make("run", f"VENV={fake_venv}")
    assert done.stdout == "ask\nHow many troops is the U.S. sending to Poland?\n"


@needs_make
@pytest.mark.parametrize("args", [(), ("help",)])
def test_make_alone_lists_the_targets_and_sets_up_nothing(tmp_path, args):
    venv = tmp_path / "venv"
    done = make(*args, f"VENV={venv}")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[1] for line in done.stdout.splitlines()]
    assert {"run", "test", "lint", "format", "bench", "bench-quick", "bench-speed", "fuzz", "clean"} <= set(listed)
    assert not venv.exists()


def test_every_target_of_the_makefile_is_in_its_help():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = set(next(line for line in text.splitlines() if line.startswith(".PHONY:")).split()[1:])
    helped = {line[3:].split(":")[0] for line in text.splitlines() if line.startswith("## ")}
    assert phony - {"bytecode"} == helped


def fake_python(folder: Path, version: str) -> Path:
    """A python that answers the Makefile's version check as `version` does
    and, asked for anything else, logs its arguments and fails (so make stops
    there, before pip)."""
    major, minor = version.split(".")
    script = folder / f"python{version}"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -c ]; then echo {version}; [ {major} -gt 3 ] || [ {minor} -ge 10 ]; exit; fi\n'
        f'echo "$@" >> "{folder}/log"; exit 1\n'
    )
    script.chmod(0o755)
    return script


@needs_make
@pytest.mark.parametrize(
    ("python", "why"), [("3.9", "is Python 3.9"), (None, "cannot be run")], ids=["too old", "missing"]
)
def test_make_refuses_an_unsupported_python_before_making_the_venv(tmp_path, python, why):
    command = str(fake_python(tmp_path, python) if python else tmp_path / "no-such-python")
    venv = tmp_path / "venv"
    done = make("run", f"VENV={venv}", f"PYTHON={command}")
    assert done.returncode != 0
    assert f"natoqa needs Python 3.10 or newer: {command} {why}; name another with PYTHON=" in done.stderr
    assert "make run PYTHON=python3.12" in done.stderr
    assert not venv.exists() and not (tmp_path / "log").exists()


@needs_make
def test_make_starts_a_venv_left_unfinished_afresh(tmp_path):
    python = fake_python(tmp_path, "3.12")
    venv = tmp_path / "venv"
    done = make("test", f"VENV={venv}", f"PYTHON={python}")
    assert done.returncode != 0
    assert (tmp_path / "log").read_text() == f"-m venv --clear {venv}\n"


def test_the_makefiles_python_check_is_pyprojects_requires_python():
    import re

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    major, minor = re.search(r'^requires-python = ">=(\d+)\.(\d+)"$', pyproject, re.M).groups()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"sys.version_info < ({major}, {minor})" in makefile
    assert f"natoqa needs Python {major}.{minor} or newer" in makefile


def bench_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_bench_data(monkeypatch, tmp_path):
    """The benchmark data absent, and no process started: a skip starts none."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[:1]}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)

    def absent(module):
        bench = tmp_path / "shared" / "bench"
        for name, path in {"BENCH": bench, "SQUAD2": bench / "squad-dev", "SQUAD1": bench / "squad-dev-v1.1"}.items():
            monkeypatch.setattr(module, name, path)
        return module

    return absent


@pytest.mark.skipif(not (ROOT / "bench").is_dir(), reason="no bench/ (an sdist)")
@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("quality", []),  # make bench-quick
        ("quality", ["--full"]),  # make bench
        ("quality", ["--dense"]),  # would load the model before finding no data
        ("speed", []),  # make bench-speed
        ("speed", ["--quick"]),
    ],
)
def test_a_benchmark_without_its_data_says_so_and_exits_0(no_bench_data, tmp_path, capsys, script, args):
    module = no_bench_data(bench_script(script))
    if script == "speed":
        module.WORK = tmp_path / "work"
    assert module.main(args) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"benchmark data not found at {tmp_path / 'shared' / 'bench'}; skipping" in err
    if script == "speed":
        assert "--without-data" in err
        assert not module.WORK.exists()


@needs_make
def test_make_clean_removes_what_the_tools_made_and_nothing_else(tmp_path):
    checkout = tmp_path / "natoqa"
    made = [
        ".venv/bin/python",
        "build/lib/x.py",
        "dist/natoqa.whl",
        ".pytest_cache/v/x",
        ".ruff_cache/x",
        ".hypothesis/examples/x",
        "src/natoqa/__pycache__/cli.cpython-311.pyc",
        "tests/__pycache__/conftest.cpython-311.pyc",
        "bench/tools/__pycache__/x.pyc",  # and no docs/ or tools/, as in the sdist
    ]
    kept = [
        "Makefile",
        "src/natoqa/cli.py",
        "seeds/questions.yaml",
        "notes.txt",
        "my-corpus/__pycache__/a.txt",
        "bench/.work/after.json",
    ]
    for name in made + kept:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("x")
    (checkout / "Makefile").write_text((ROOT / "Makefile").read_text(encoding="utf-8"))
    cache = tmp_path / "cache"
    (cache / "index-x.nqi").parent.mkdir()
    (cache / "index-x.nqi").write_text("x")
    done = subprocess.run(
        ["make", "-s", "clean"], cwd=checkout, capture_output=True, text=True, timeout=60, env=make_env()
    )
    assert done.returncode == 0, done.stderr
    assert [name for name in made if (checkout / name).exists()] == []
    assert not (checkout / "src/natoqa/__pycache__").exists() and not (checkout / ".venv").exists()
    assert [name for name in kept if not (checkout / name).exists()] == []
    assert (cache / "index-x.nqi").exists()
