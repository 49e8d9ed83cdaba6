"""Reading a corpus: INDEX.md, the documents it lists, and their passages.

This is the only module that opens corpus files. It reads them and never
writes. A corpus is a folder with an INDEX.md whose list items link the
documents, or a single text file. A passage is a block of non-blank lines;
it keeps its document, its first and last line (1-based) and its exact text,
so every answer can be traced back to the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

from natoqa.errors import CorpusError

INDEX_NAME = "INDEX.md"

# A clear limit instead of an unbounded read: the whole document is held in
# memory as lines, and a 50 MB text file is already a small library's worth.
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

# Line breaks as editors count them. str.splitlines() would also break at
# form feeds, U+2028 and others, and line numbers would drift from the
# editor's.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
# A link as CommonMark reads one: its text may hold balanced brackets
# (`[Minutes [draft]]`), its destination be in <...>, or hold backslash
# escapes and balanced parentheses (`notes(1).txt`, `notes\(1\).txt`).
_LINK = re.compile(
    r"\[((?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]\(\s*(<[^>]*>|(?:[^()\s\\]|\\.|\((?:[^()\s\\]|\\.)*\))+)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A code fence: three or more backticks or tildes, then an info string
# (`sh`). As CommonMark reads one, but at any indent: a fence in a list
# item stands indented. Only a fence of the same character, at least as
# long, with nothing after it, closes one: a block may show a fence (a
# tilde one in a backtick block, three backticks in a block of four).
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_COMMENT = re.compile(r"<!--.*?-->")


@dataclass(frozen=True)
class Passage:
    """A block of non-blank lines of one document, with its exact text."""

    index: int  # position in Corpus.passages
    document: str  # document id
    title: str
    path: str  # the document path as the user would open it
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # the lines joined by "\n", line ends normalized


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    path: str  # as the user would open it (relative if the corpus was named so)
    lines: tuple[str, ...] = field(repr=False)
    passages: tuple[Passage, ...] = field(repr=False)
    sha256: str = ""
    # For the cache's fast check (natoqa.store): the path the file was
    # read by, and its stat signature taken just before it was read.
    source: str = field(default="", repr=False, compare=False)
    signature: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def text_at(self, start_line: int, start_col: int, end_line: int, end_col: int) -> str:
        """The document's text between two 1-based positions, end inclusive."""
        if start_line == end_line:
            return self.lines[start_line - 1][start_col - 1 : end_col]
        parts = [self.lines[start_line - 1][start_col - 1 :]]
        parts.extend(self.lines[start_line : end_line - 1])
        parts.append(self.lines[end_line - 1][:end_col])
        return "\n".join(parts)

    def passage_at(self, line: int) -> Passage | None:
        """The passage holding a 1-based line, or None for a blank line."""
        for passage in self.passages:
            if passage.start_line <= line <= passage.end_line:
                return passage
        return None


@dataclass(frozen=True)
class Corpus:
    root: str  # the folder or file, as named
    title: str
    description: str
    documents: tuple[Document, ...]
    passages: tuple[Passage, ...] = field(repr=False)
    warnings: tuple[str, ...] = ()
    index_sha256: str = field(default="", repr=False, compare=False)  # of INDEX.md, for the cache

    def document(self, doc_id: str) -> Document | None:
        for doc in self.documents:
            if doc.id == doc_id:
                return doc
        return None

    def files(self) -> tuple[str, ...]:
        """The files the corpus was read from (see files_of)."""
        return files_of(self.root, [doc.source for doc in self.documents])

    def signed(self) -> dict[str, tuple[str, tuple, str]]:
        """Each document's id: (the file it was read from, that file's stat
        signature taken just before the read, as `signatures` gives it, and
        the sha256 of what was read); documents read from no file, or not
        stat'able then, are left out."""
        return {d.id: (d.source, tuple(d.signature[:5]), d.sha256) for d in self.documents if d.source and d.signature}

    def fingerprint(self) -> str:
        """A digest of every document's content, id and title."""
        digest = hashlib.sha256()
        for doc in self.documents:
            # surrogateescape: the id and title of a single-file corpus come
            # from its file name, which need not be UTF-8.
            digest.update(f"{doc.id}\0{doc.title}\0{doc.sha256}\0".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()


def bundled_corpus() -> Path:
    """The seed corpus: packaged inside natoqa, or the checkout's seeds/."""
    here = Path(__file__).resolve().parent
    packaged = here / "seeds"
    if (packaged / INDEX_NAME).is_file():
        return packaged
    return here.parent.parent / "seeds"


def load_corpus(location: str | os.PathLike | None = None) -> Corpus:
    """Load a corpus folder (with INDEX.md) or a single text file.

    With no location, the bundled seed corpus. Paths on the returned
    records keep the form the location was given in: relative stays relative.
    """
    named = corpus_location(location)
    path = Path(named)
    if not path.exists():
        # Quoted when white space would hide it: NATOQA_CORPUS=' '.
        raise CorpusError(f"corpus not found: {named if named.strip() == named else repr(named)}")
    if not path.is_dir():  # a file, or a pipe or device, which reading refuses
        return _corpus(named, path.stem, "", [read_document(named)])
    index_path = path / INDEX_NAME
    if not index_path.exists():
        raise CorpusError(f"{named}: not a corpus folder (no {INDEX_NAME})")
    index_bytes = _read_bytes(index_path, _join(named, INDEX_NAME))
    index_text = _decode(index_bytes, _join(named, INDEX_NAME))
    meta, entries = parse_index(index_text, _join(named, INDEX_NAME))
    if not entries:
        raise CorpusError(
            f"{_join(named, INDEX_NAME)}: lists no documents (expected list items such as '- [Title](file.txt)')"
        )
    root_real = os.path.realpath(path)
    documents = []
    seen: dict[str, int] = {}
    first_passage = 0
    for line_no, title, target in entries:
        where = f"{_join(named, INDEX_NAME)}:{line_no}"
        if "\0" in target:  # %00, decoded: no file name holds one
            raise CorpusError(f"{where}: link {target!r} holds a NUL character; no file is named so")
        if os.path.isabs(target) or target.startswith(("/", "\\")):
            raise CorpusError(f"{where}: link {target!r} is an absolute path; links must stay inside the corpus folder")
        real = os.path.realpath(os.path.join(root_real, target))
        if os.path.commonpath([root_real, real]) != root_real:
            raise CorpusError(f"{where}: link {target!r} leads outside the corpus folder")
        doc_id = Path(target).stem
        if doc_id in seen:
            raise CorpusError(
                f"{where}: duplicate document id {doc_id!r} (also on line {seen[doc_id]}); file names must be unique"
            )
        seen[doc_id] = line_no
        display = _join(named, target)
        if os.path.isdir(real):
            raise CorpusError(f"{where}: linked document is a folder, not a text file: {display}")
        if not os.path.exists(real):
            raise CorpusError(f"{where}: linked document not found: {display}")
        # The cache checks the file by the path as linked, so that a link
        # pointed elsewhere shows as a change.
        doc = _read_document(
            Path(real), display, doc_id, title or doc_id, first_passage, os.path.join(root_real, target)
        )
        first_passage += len(doc.passages)
        documents.append(doc)
    title = meta.get("title") or _first_heading(index_text) or path.resolve().name
    corpus = _corpus(named, title, meta.get("description", ""), documents)
    return replace(corpus, index_sha256=hashlib.sha256(index_bytes).hexdigest())


def read_document(location: str | os.PathLike) -> Document:
    """One text file read on its own, as a single-file corpus holds it (its
    name its id and title), but not refused for holding no passage: `show`
    reads a file so, and says which line is missing or blank."""
    named = os.fspath(location)
    path = Path(named)
    return _read_document(path, named, path.stem, path.stem, 0, os.path.realpath(path))


def corpus_location(location: str | os.PathLike | None = None) -> str:
    """The corpus location as named: the bundled seed corpus when none is given."""
    if location is None or str(location) == "":
        return str(bundled_corpus())
    return os.fspath(location)


class NotRegular(OSError):
    """A path that names a FIFO, a device or a socket, not a file."""


def open_regular(path):
    """A regular file, opened for reading bytes. Opened without blocking and
    checked once open: a FIFO put where a document or a cache file was
    would wait for a writer forever, and /dev/zero never ends."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    f = open(fd, "rb", closefd=True)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # Linux opens a folder for reading
            raise IsADirectoryError(21, "Is a directory", os.fsdecode(path))
        if not stat.S_ISREG(mode):
            raise NotRegular(f"{os.fsdecode(path)}: not a regular file")
    except BaseException:
        f.close()
        raise
    return f


def read_regular(path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """At most limit + 1 bytes of a regular file (see open_regular)."""
    with open_regular(path) as f:
        return f.read(limit + 1)


def index_digest(named: str) -> str:
    """sha256 of a corpus folder's INDEX.md; "" for a single-file corpus."""
    if os.path.isfile(named):
        return ""
    return hashlib.sha256(read_regular(os.path.join(named, INDEX_NAME))).hexdigest()


def file_signature(path: str) -> tuple[int, ...]:
    """(size, mtime_ns, ctime_ns, inode, device, now_ns) of a file, now taken first."""
    now = time.time_ns()
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, now)


def files_of(root: str, sources) -> tuple[str, ...]:
    """A corpus's INDEX.md (for a folder) and its documents' paths as read:
    the files whose change changes its answers."""
    listed = tuple(source for source in sources if source)
    return (os.path.join(root, INDEX_NAME), *listed) if os.path.isdir(root) else listed


def signatures(paths) -> tuple:
    """Each file's (size, mtime_ns, ctime_ns, inode, device), None where it
    cannot be read: what tells that a file changed without reading it (an
    edit in place moves the times, a save by rename the inode)."""
    found = []
    for path in paths:
        try:
            found.append(file_signature(path)[:5])  # without the time it was taken
        except (OSError, ValueError):
            found.append(None)
    return tuple(found)


def file_digest(path: str) -> str:
    return hashlib.sha256(read_regular(path)).hexdigest()


def read_verified_lines(path: str, sha256: str) -> tuple[str, ...]:
    """The lines of a document the index was built from, checked to be unchanged."""
    try:
        data = read_regular(path)
    except NotRegular:
        raise CorpusError(f"{path}: the document changed while natoqa was answering; run again") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CorpusError(f"{path}: the document changed while natoqa was answering; run again")
    return split_lines(_decode(data, path))


def _corpus(named: str, title: str, description: str, documents: list[Document]) -> Corpus:
    passages = tuple(p for doc in documents for p in doc.passages)
    if not passages:
        raise CorpusError(f"{named}: the corpus has no text (every document is empty or blank)")
    warnings = tuple(
        f"{doc.path}: document {'is empty' if len(doc.lines) <= 1 and not any(doc.lines) else 'holds only blank lines'}"
        for doc in documents
        if not doc.passages
    )
    return Corpus(named, title, description, tuple(documents), passages, warnings)


def _join(named: str, target: str) -> str:
    return os.path.normpath(os.path.join(named, target))


def parse_index(text: str, where: str) -> tuple[dict, list[tuple[int, str, str]]]:
    """Front matter and (line, title, target) of each document link."""
    lines = _LINE_BREAK.split(text)
    body_start = _body_start(lines, where)
    meta = _front_matter("\n".join(lines[1 : body_start - 1]), where) if body_start else {}
    entries = []
    for i, line in _markdown_lines(lines, body_start):
        item = _LIST_ITEM.match(line)
        if not item:
            continue
        for link in _LINK.finditer(_COMMENT.sub("", item.group(1))):
            target = link.group(2).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1].strip()
            if not target or target.startswith("#") or _SCHEME.match(target):
                continue  # a web link or an anchor: not a document of the corpus
            target = unquote(_ESCAPE.sub(r"\1", target).split("#", 1)[0])
            title = re.sub(r"\\(.)", r"\1", link.group(1)).strip()
            entries.append((i + 1, title, target))
            break  # one document per list item
    return meta, entries


def _body_start(lines: list[str], where: str) -> int:
    """The index of the first line after the front matter (0 if none)."""
    if not lines or lines[0].strip() != "---":
        return 0
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return i + 1
    raise CorpusError(f"{where}:1: front matter has no closing '---' line")


def _markdown_lines(lines: list[str], start: int):
    """(index, line) of each line from `start` that is Markdown: not in a
    fenced code block nor in an HTML comment, and cut where a comment it
    does not close opens. The links and the title are read from these
    only: an example in a code block, an entry or a heading commented
    out, is no part of the corpus."""
    fence = ""  # the open code block's fence, "" outside one
    in_comment = False
    for i in range(start, len(lines)):
        line = lines[i]
        if in_comment:
            # An HTML comment over several lines is no Markdown, up to the
            # line that ends it.
            in_comment = "-->" not in line
            continue
        marker = _FENCE.match(line)
        if fence:
            if marker and marker.group(1).startswith(fence) and not marker.group(2).strip():
                fence = ""
            continue
        # A backtick fence's info string holds no backtick: "```a`b" is code in a line.
        if marker and not (marker.group(1)[0] == "`" and "`" in marker.group(2)):
            fence = marker.group(1)
            continue
        opened = _COMMENT.sub(lambda m: " " * len(m.group()), line).find("<!--")
        if opened >= 0:
            line, in_comment = line[:opened], True
        yield i, line


def _front_matter(raw: str, where: str) -> dict:
    """The front matter's `title` and `description`, as text. Read as YAML
    nodes, never built into values: natoqa uses no other key, and building
    them ran code that failed on values YAML's syntax allows (a date
    `2024-13-45`, `!!int abc`: exit 70) and turned a title into what
    Python prints for the value built (`!!binary` as "b'...'", `true` as
    "True")."""
    import yaml  # only corpora with front matter pay for yaml

    from natoqa import yamltext

    try:
        loader = yamltext.fast_loader()
        mark = yamltext.first_alias(raw, loader)
        if mark is not None:
            raise CorpusError(f"{where}:{mark.line + 2}: YAML aliases (*name) are not allowed in front matter")
        root = yaml.compose(raw, Loader=loader)
    except RecursionError:
        raise CorpusError(f"{where}: malformed front matter: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusError(f"{where}{line}: malformed front matter: {problem}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise CorpusError(f"{where}: front matter must be a mapping of keys to values")
    meta = {}
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_STR and key_node.value in _META_KEYS:
            meta[key_node.value] = _front_matter_text(value_node, key_node.value, where)
    return meta


_YAML = "tag:yaml.org,2002:"
_YAML_STR = _YAML + "str"
_META_KEYS = ("title", "description")
# Scalars YAML would read as another type, whose text is what the author
# wrote for a title: `title: 1984`, `title: 3.10`, `title: 2024-05-01`.
_AS_WRITTEN = {_YAML + name for name in ("str", "int", "float", "bool", "timestamp")}


def _front_matter_text(node, key: str, where: str) -> str:
    """A title or description: a scalar's text as written, "" for none
    (`title:`, `~`); a list, a mapping, binary data or a value of another
    tag is no text, and refused."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.tag in _AS_WRITTEN:
            return node.value
        if node.tag == _YAML + "null":
            return ""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
    elif node.tag == _YAML + "binary":
        kind = "binary data (!!binary)"
    else:
        tag = "!!" + node.tag[len(_YAML) :] if node.tag.startswith(_YAML) else node.tag
        kind = f"a value tagged {tag}"
    raise CorpusError(f"{where}: front matter '{key}' must be text, not {kind}")


def _first_heading(text: str) -> str:
    """The text of INDEX.md's first `# ` heading, read as parse_index reads
    links: the front matter (where `# ` starts a YAML comment), code blocks
    and HTML comments are passed over, and a comment in the heading is no
    part of it."""
    lines = _LINE_BREAK.split(text)
    for _, line in _markdown_lines(lines, _body_start(lines, "")):
        if line.startswith("# "):
            return _COMMENT.sub("", line[2:]).strip()
    return ""


def _read_bytes(path: Path, display: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise CorpusError(
                f"{display}: {size:,} bytes is over natoqa's limit of {MAX_DOCUMENT_BYTES:,} bytes a document; split it"
            )
        # Bounded even when the size lied (a /proc file, a file still growing).
        data = read_regular(path)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise CorpusError(f"{display}: over natoqa's limit of {MAX_DOCUMENT_BYTES:,} bytes a document; split it")
        return data
    except IsADirectoryError:
        raise CorpusError(f"{display}: is a folder, not a text file") from None
    except NotRegular:
        raise CorpusError(f"{display}: not a regular file (a pipe or a device); natoqa reads text files") from None
    except OSError as exc:
        raise CorpusError(f"{display}: cannot read: {exc.strerror or exc}") from None


def _decode(data: bytes, display: str) -> str:
    if b"\0" in data:
        offset = data.index(b"\0")
        raise CorpusError(f"{display}: binary file (NUL byte at offset {offset}), not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{display}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    # A byte order mark is an encoding artefact, not text: columns count from
    # the first real character.
    return text[1:] if text.startswith("\ufeff") else text


def _read_document(path: Path, display: str, doc_id: str, title: str, first_index: int, source: str) -> Document:
    # Taken before the read: a change during the read then shows as a
    # mismatch next time, never as a signature matching changed content.
    try:
        signature = file_signature(source)
    except OSError:
        signature = ()
    data = _read_bytes(path, display)
    text = _decode(data, display)
    lines = split_lines(text)
    return Document(
        id=doc_id,
        title=title,
        path=display,
        lines=lines,
        passages=tuple(split_passages(lines, doc_id, title, display, first_index)),
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        signature=signature,
    )


def split_lines(text: str) -> tuple[str, ...]:
    """The lines of a text as an editor numbers them; a final line break ends
    the last line rather than starting an empty one."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return tuple(lines)


def split_passages(lines, doc_id: str, title: str, display: str, first_index: int = 0) -> list[Passage]:
    """Blocks of non-blank lines; a line of only white space is blank."""
    passages = []
    start = None
    for i, line in enumerate([*lines, ""]):
        blank = not line.strip()
        if not blank and start is None:
            start = i
        elif blank and start is not None:
            passages.append(
                Passage(
                    index=first_index + len(passages),
                    document=doc_id,
                    title=title,
                    path=display,
                    start_line=start + 1,
                    end_line=i,
                    text="\n".join(lines[start:i]),
                )
            )
            start = None
    return passages
