"""Write src/natoqa/_marks.py: the Unicode combining marks, as a regex class.

Python's `\\w` takes letters and digits (str.isalnum) but not the marks
that combine with them: "Mu\\u0308ller" (ü decomposed) split into "Mu" and
"ller", and a Hindi word into its letters, each vowel sign a break. The
tokenizers add these ranges to `\\w`. Computing them at import would cost
0.15 s (every code point's category), so they are written out once, from
this Python's Unicode database (the module says which version).

    python tools/build_marks.py
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "natoqa" / "_marks.py"


def ranges() -> list[tuple[int, int]]:
    found, start = [], None
    for c in range(sys.maxunicode + 2):
        mark = c <= sys.maxunicode and unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")
        if mark and start is None:
            start = c
        elif not mark and start is not None:
            found.append((start, c - 1))
            start = None
    return found


def _escape(c: int) -> str:
    return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def source() -> str:
    parts = [_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges()]
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 84:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    body = "\n".join(f'    "{line}"' for line in lines)
    return (
        '"""Unicode combining marks (categories Mn, Mc, Me) as regex class ranges.\n\n'
        f"Written by tools/build_marks.py from Unicode {unicodedata.unidata_version}; do not edit.\n"
        '"""\n\n'
        f'UNICODE_VERSION = "{unicodedata.unidata_version}"\n\n'
        f"MARKS = (\n{body}\n)\n"
    )


if __name__ == "__main__":
    OUT.write_text(source(), encoding="utf-8")
    print(f"wrote {OUT}")
