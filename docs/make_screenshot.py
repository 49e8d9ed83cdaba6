"""Regenerate docs/screenshot.svg from a real run of natoqa (`make screenshot`).

natoqa runs in a subprocess as a person would run it, with FORCE_COLOR so
that it draws its terminal styles; rich turns those escape codes back into
styled text and exports the recording as an SVG for the README.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 100
RUNS = [
    ["ask", "--corpus", "seeds", "How many troops is the U.S. sending to Poland?"],
    ["ask", "--corpus", "seeds", "-k", "2", "What does Putin want?"],
]


def run(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "NATOQA_CORPUS")}
    env.update(FORCE_COLOR="1", COLUMNS=str(WIDTH), TERM="xterm-256color")
    done = subprocess.run(
        [sys.executable, "-m", "natoqa", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        sys.exit(f"natoqa {shlex.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    console = Console(
        record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=open(os.devnull, "w")
    )
    for i, args in enumerate(RUNS):
        if i:
            console.print()
        prompt = Text("$ ", style="bold green")
        prompt.append("natoqa " + shlex.join(args), style="bold")
        console.print(prompt)
        console.print(Text.from_ansi(run(args).rstrip("\n")))
    target = ROOT / "docs" / "screenshot.svg"
    console.save_svg(str(target), title="natoqa")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
