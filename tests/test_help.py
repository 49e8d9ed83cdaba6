"""Help for every command, with examples; shell completion for bash, zsh and fish."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from natoqa.cli import CHECK_EXIT_HELP, EXIT_CODES_HELP, cli
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _option_names(command) -> set[str]:
    return {"-h", "--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_examples(runner, command):
    result = runner.invoke(cli, [command, "--help"], prog_name="natoqa", catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: natoqa {command} [OPTIONS]")
    # The example block: indented lines, the first one running this very command.
    examples = result.stdout.split("\n  Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples[0].split()[:2] == ["natoqa", command]
    assert all(line.startswith("    ") for line in examples)


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _natoqa_completion natoqa"),
        ("zsh", "#compdef natoqa"),
        ("fish", "complete --no-files --command natoqa"),
    ],
)
def test_shell_completion_scripts(shell, marker):
    env = {"_NATOQA_COMPLETE": f"{shell}_source", "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "natoqa"], env=env, capture_output=True, text=True, check=True)
    assert marker in out.stdout


def test_completion_offers_the_commands():
    env = {"_NATOQA_COMPLETE": "bash_complete", "COMP_WORDS": "natoqa ", "COMP_CWORD": "1"}
    out = subprocess.run([sys.executable, "-m", "natoqa"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [f"plain,{name}" for name in ("ask", "check", "docs", "show")]


def _readme_commands():
    """Each `natoqa COMMAND ...` the README shows, up to a pipe, a redirection or a comment."""
    for match in re.finditer(r"\bnatoqa (ask|check|docs|show)\b([^\n`|<>)#]*)", README):
        yield match.group(1), shlex.split(match.group(2))


@pytest.mark.parametrize(
    ("command", "words"), [pytest.param(c, w, id=" ".join([c, *w])) for c, w in _readme_commands()]
)
def test_every_option_a_readme_command_shows_is_that_commands(command, words):
    options = [word.split("=")[0] for word in words if re.match(r"--?[a-zA-Z]", word)]
    assert set(options) <= _option_names(cli.commands[command])


def test_the_readme_names_every_exit_code_the_help_lists():
    table = set(re.findall(r"^\| (\d+(?:\+N)?) \|", README, re.MULTILINE))
    for help_text in (EXIT_CODES_HELP, CHECK_EXIT_HELP):
        listed = set(re.findall(r"^  (\d+(?:\+N)?) ", help_text, re.MULTILINE))
        assert listed and listed <= table


def test_every_command_takes_the_corpus_as_the_readme_says():
    # "--corpus PATH, accepted by every command"
    assert all("--corpus" in _option_names(command) for command in cli.commands.values())
