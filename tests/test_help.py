"""Help for every command, with examples; shell completion for bash, zsh and fish."""

from __future__ import annotations

import subprocess
import sys

import pytest

from natoqa.cli import cli


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
