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


# Left out: scripts written without spaces between words (Thai, Lao,
# Myanmar, Khmer), where marks as word characters would make a whole phrase
# one token that a question must match whole (`\w` alone splits it at each
# mark, which lets the question's words meet); and variation selectors,
# which would be a token of their own after every emoji that has one.
LEFT_OUT = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


def ranges() -> list[tuple[int, int]]:
    found, start = [], None
    for c in range(sys.maxunicode + 2):
        mark = (
            c <= sys.maxunicode
            and unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")
            and not any(a <= c <= b for a, b in LEFT_OUT)
        )
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
        '"""Unicode combining marks (categories Mn, Mc, Me) as regex class ranges,\n'
        "but those of scripts without spaces between words and variation selectors.\n\n"
        f"Written by tools/build_marks.py from Unicode {unicodedata.unidata_version}; do not edit.\n"
        '"""\n\n'
        f'UNICODE_VERSION = "{unicodedata.unidata_version}"\n\n'
        f"MARKS = (\n{body}\n)\n"
    )


if __name__ == "__main__":
    OUT.write_text(source(), encoding="utf-8")
    print(f"wrote {OUT}")
