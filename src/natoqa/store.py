"""Getting an Index for a corpus: built fresh, or read back from the on-disk cache.

The cache folder ($NATOQA_CACHE_DIR, else $XDG_CACHE_HOME/natoqa, else
~/.cache/natoqa) holds two kinds of file:

- `index-<key>.nqi`, keyed by content: a digest of every document's sha256,
  id and title (Corpus.fingerprint), natoqa's version, the index parameters
  and the source of the modules that compute the index. It holds every
  attribute named in Index.STATE and the passage table. An edited document
  gives another key, so it is never answered from a stale index.
- `where-<key>.json`, keyed by where the corpus is (the name it was given
  and its real path): the corpus's title and warnings, the sha256 of its
  INDEX.md, and for each document the sha256 of its content together with
  the (size, mtime_ns, ctime_ns, inode, device) it had when it was read
  and the path its citations show; and, on the file's first line, the
  sha256 of all that, checked before any of it is used.

`open_index` answers without reading every document when the INDEX.md is
byte for byte the same and every document's stat signature equals the
recorded one. That is trusted only when the recording was made at least
RACY_NS after the file's last modification: an edit within the file
system's timestamp granularity of the read could otherwise keep the same
signature (git's "racily clean" problem). Any other document is read and
hashed again, and a different hash means a full load and a new index.
An edit that keeps size, mtime, ctime, inode and device all unchanged needs
the system clock set back (ctime cannot be set by a program), so it is the
one change this fast check cannot see. Quotes are cut from the document
files themselves, whose sha256 is checked again when they are read.

After a build, `prune` removes the files no corpus can use any more: the
index an edit replaced and those of corpora no longer where they were.

The index file is data, never code: a JSON header, then arrays of numbers
and JSON texts, read with mmap, array and json. Its magic, format, byte
order, size and a CRC-32 of the whole body are checked before anything in
it is used; anything wrong and it is ignored and rebuilt. Files are
written to a temporary name in the cache folder and renamed into place.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import mmap
import os
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from natoqa import __version__
from natoqa import corpus as corpusmod
from natoqa.corpus import Corpus, Passage
from natoqa.errors import CorpusError
from natoqa.index import CODECS, Index, Packed, PostingList, Postings

FORMAT = 2
MAGIC = b"NATOQA\x00\x01"
_HEAD = struct.Struct("<8sQI")  # magic, header length, header CRC-32

# A file modified less than this long before it was read is hashed again
# next time instead of trusted by its stat signature. Two seconds covers
# the coarsest timestamps in use (FAT's two-second mtime).
RACY_NS = 2_000_000_000

# The modules whose code decides what the index holds: an edit to any of
# them changes the key, even without a new version number.
_CODE = ("text", "_marks", "index", "_nltk", "corpus", "store", "shortanswer")
_DATA = ("stopwords.txt", "spelling.txt")

# Dataclasses the index may hold inside STATE values, revived by name from
# these modules only.
_RECORD_MODULES = ("natoqa.index", "natoqa.text")


class CacheMiss(Exception):
    """A cache file that is missing, foreign, stale or damaged."""


def cache_dir() -> Path:
    """Where natoqa keeps its cache."""
    env = os.environ.get("NATOQA_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "natoqa"
    return Path.home() / ".cache" / "natoqa"


# --- the two entry points ----------------------------------------------------


def load_index(corpus: Corpus, use_cache: bool = True, progress=None, warn=None) -> Index:
    """The index of a loaded corpus, from the cache when it holds it.

    `progress(done, total)` is called while a new index is built; `warn`
    gets a one-line message when the cache cannot be written.
    """
    if not use_cache:
        return build(corpus, progress)
    directory = cache_dir()
    key = content_key(corpus.fingerprint())
    path = directory / f"index-{key}.nqi"
    try:
        index = read_index(path, key, corpus)
    except Exception:  # a damaged or foreign file is never trusted
        index = None
    built = index is None
    if built:
        index = build(corpus, progress)
        if not save_in_cache(directory, corpus, lambda: write_index(path, index, key, corpus), warn):
            return index  # no index file: a locator would point at nothing (and warn twice)
    replaced = []
    save_in_cache(directory, corpus, lambda: replaced.append(write_locator(directory, corpus, key)), warn)
    if built:
        # Only after a build: the one time files may have become unused,
        # and a scan of the locators costs little beside a build.
        prune(directory, replaced[0] if replaced else None, key)
    return index


def open_index(location=None, use_cache: bool = True, progress=None, warn=None) -> Index:
    """The index of the corpus at `location`, reading as little as it can.

    With a current cache, the documents are neither read nor analysed:
    passages are read from their files when an answer needs them.
    """
    if use_cache:
        try:
            index = _open_cached(location, warn)
        except Exception:  # anything unexpected: fall back to a full load
            index = None
        if index is not None:
            return index
    return load_index(corpusmod.load_corpus(location), use_cache, progress, warn)


def build(corpus: Corpus, progress=None) -> Index:
    """A new index; `progress(done, total)` is told how far the analysis is."""
    return Index(corpus, progress=progress)


def save_in_cache(directory: Path, corpus, write, warn, what: str = "the index cache") -> bool:
    """Run `write` in the cache folder, unless it lies inside the corpus;
    False (after one warning) if it failed. What natoqa writes in its cache
    folder (the index, the locator, --dense's vectors) is written so."""
    if _inside(directory, corpus.root):
        _warn_once(warn, directory, f"cache folder {directory} is inside the corpus; not caching the index")
        return False
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write()
    except (OSError, ValueError, TypeError, _Unsupported) as exc:
        if not isinstance(exc, _Unsupported):
            reason = getattr(exc, "strerror", None) or exc
            if isinstance(exc, (FileExistsError, NotADirectoryError)):
                # mkdir's "File exists" when the path, or a folder on it, is a file.
                reason = "a file is in the way (the cache needs a folder there)"
            _warn_once(warn, directory, f"cannot write {what} in {directory}: {reason}")
        return False
    return True


# The cache folders already warned about in this run. A cache problem is
# said once: `check` indexes each of its corpora, and each would meet the
# same full disk or file in the way, a line each.
_WARNED: set[str] = set()


def forget_warnings() -> None:
    """A new run (natoqa.cli's main) says its cache problems again: a
    process may make many runs (natoqa called as a library, the tests)."""
    _WARNED.clear()


def _warn_once(warn, directory: Path, message: str) -> None:
    if warn and os.fspath(directory) not in _WARNED:
        _WARNED.add(os.fspath(directory))
        warn(message)


def _inside(directory: Path, root: str) -> bool:
    try:
        root_real = os.path.realpath(root)
        if os.path.isfile(root_real):
            # A single-file corpus reads that file only: a cache beside it
            # or below its folder (`--corpus ~/notes.txt`, the cache in
            # ~/.cache) is no part of it.
            return False
        here = os.path.realpath(directory)
        return os.path.commonpath([root_real, here]) == root_real
    except (OSError, ValueError):
        return False


# --- keys --------------------------------------------------------------------


@lru_cache(maxsize=1)
def _code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{FORMAT}\0{__version__}\0{sys.byteorder}\0".encode())
    for name in [f"{m}.py" for m in _CODE] + list(_DATA):
        try:
            digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
        except OSError:
            digest.update(name.encode() + b"\0-\0")
    return digest.hexdigest()


def content_key(fingerprint: str) -> str:
    """The name of the index file for a corpus with this fingerprint."""
    from natoqa import index as indexmod

    params = json.dumps([Index.STATE, indexmod.K1, indexmod.B])
    return hashlib.sha256(f"{_code_digest()}\0{params}\0{fingerprint}".encode()).hexdigest()[:40]


def _locator_path(directory: Path, named: str) -> Path:
    where = f"{_code_digest()}\0{named}\0{os.path.realpath(named)}"
    # surrogateescape: a path that is not UTF-8 names its corpus too.
    return directory / f"where-{hashlib.sha256(where.encode('utf-8', 'surrogateescape')).hexdigest()[:40]}.json"


# --- writing -----------------------------------------------------------------


def write_atomic(path: Path, chunks, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, then rename it into place:
    a reader sees the old file or the new one, never half of one. natoqa's
    one way of writing a file (the cache, check reports, --record)."""
    import tempfile  # here: only a cache write needs it, and it costs a start 3 ms

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Unsupported(Exception):
    """A STATE value the format cannot hold as data."""


def write_index(path: Path, index: Index, key: str, corpus: Corpus) -> None:
    # A section is a list of chunks (bytes or arrays), written one after the
    # other: the large ones are never joined into one copy in memory.
    sections: list[list] = []
    lazy: set[int] = set()

    def add(data, is_lazy: bool = False) -> int:
        sections.append(data if isinstance(data, list) else [data])
        if is_lazy:
            lazy.add(len(sections) - 1)
        return len(sections) - 1

    key_sets: dict[tuple, int] = {}

    def keys_section(keys: list[str]) -> int:
        token = tuple(keys)
        if token not in key_sets:
            encoded = [k.encode("utf-8", "surrogatepass") for k in keys]
            offsets = array("q", [0])
            for k in encoded:
                offsets.append(offsets[-1] + len(k))
            key_sets[token] = add(offsets.tobytes()), add(b"".join(encoded))
        return key_sets[token]

    state = {name: _encode_value(getattr(index, name), add, keys_section) for name in Index.STATE}
    doc_number = {doc.id: i for i, doc in enumerate(corpus.documents)}
    passages = corpus.passages
    table = array("q")
    for p in passages:
        table.extend((doc_number[p.document], p.start_line, p.end_line))
    header = {
        "format": FORMAT,
        "natoqa": __version__,
        "byteorder": sys.byteorder,
        "key": key,
        "fingerprint": corpus.fingerprint(),
        "state": state,
        "documents": [[d.id, d.title, d.sha256] for d in corpus.documents],
        "passages": [len(passages), add(table.tobytes())],
    }
    # Sections are laid out on 8-byte boundaries so arrays can be cast in place.
    layout, offset, crcs = [], 0, []
    for i, chunks in enumerate(sections):
        length, crc = 0, 0
        for chunk in chunks:
            length += _nbytes(chunk)
            if i not in lazy:
                crc = zlib.crc32(chunk, crc)
        layout.append([offset, length])
        crcs.append(None if i in lazy else crc)
        offset += length + (-length % 8)
    # The large sections read item by item carry a CRC-32 per item, checked
    # when the item is read; every other section is checked at open.
    header["sections"] = layout
    header["crcs"] = crcs
    header["body_size"] = offset
    raw = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode()
    raw += b" " * (-(len(raw) + _HEAD.size) % 8)

    def body():
        yield _HEAD.pack(MAGIC, len(raw), zlib.crc32(raw))
        yield raw
        for (_, length), chunks in zip(layout, sections, strict=True):
            yield from chunks
            yield b"\0" * (-length % 8)

    write_atomic(path, body())


def _nbytes(chunk) -> int:
    return chunk.itemsize * len(chunk) if isinstance(chunk, array) else len(chunk)


def _sorted_keys(value: dict) -> list[str]:
    # Sorted by UTF-8 bytes, the order bisect meets them in on disk.
    return sorted(value, key=lambda k: k.encode("utf-8", "surrogatepass"))


def _encode_value(value, add, keys_section) -> dict:
    """How one STATE value is stored: small ones in the header, large ones
    as arrays (numbers) or one JSON text per item, read when asked for."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"kind": "json", "value": _tag(value)}
    if isinstance(value, Packed):
        # Already JSON texts, one a passage: written as they are.
        offsets, crcs, at = array("q", [0]), array("I"), 0
        for row in value.rows:
            at += len(row)
            offsets.append(at)
            crcs.append(zlib.crc32(row))
        return {
            "kind": "rows",
            "codec": value.codec,
            "of": "list",
            "n": len(value.rows),
            "offsets": add(offsets.tobytes()),
            "crcs": add(crcs.tobytes()),
            "data": add(list(value.rows), True),
        }
    if isinstance(value, Postings):
        keys = _sorted_keys(value)
        ko, kd = keys_section(keys)
        offsets, crcs, ids, weights, at = array("q", [0]), array("I"), [], [], 0
        for k in keys:
            these_ids, these_weights = value.arrays(k)
            crcs.append(zlib.crc32(these_weights, zlib.crc32(these_ids)))
            ids.append(these_ids)
            weights.append(these_weights)
            at += len(these_ids)
            offsets.append(at)
        return {
            "kind": "postings",
            "n": len(keys),
            "keys": [ko, kd],
            "offsets": add(offsets.tobytes()),
            "crcs": add(crcs.tobytes()),
            "ids": add(ids, True),
            "weights": add(weights, True),
        }
    if isinstance(value, (list, tuple)):
        container = "tuple" if isinstance(value, tuple) else "list"
        if value and all(type(v) is bool for v in value):
            return {"kind": "bools", "of": container, "data": add(bytes(value))}
        if value and all(type(v) is int for v in value):
            try:
                return {"kind": "ints", "of": container, "data": add(array("q", value).tobytes())}
            except OverflowError:
                pass
        if value and all(type(v) is float for v in value):
            return {"kind": "floats", "of": container, "data": add(array("d", value).tobytes())}
        offsets, blob, crcs = _json_rows(value)
        return {
            "kind": "rows",
            "of": container,
            "n": len(value),
            "offsets": add(offsets),
            "crcs": add(crcs),
            "data": add(blob, True),
        }
    if isinstance(value, dict) and all(type(k) is str for k in value):
        keys = _sorted_keys(value)
        ko, kd = keys_section(keys)
        if keys and all(type(value[k]) is float for k in keys):
            return {
                "kind": "floatmap",
                "n": len(keys),
                "keys": [ko, kd],
                "data": add(array("d", [value[k] for k in keys]).tobytes()),
            }
        offsets, blob, crcs = _json_rows([value[k] for k in keys])
        return {
            "kind": "map",
            "n": len(keys),
            "keys": [ko, kd],
            "offsets": add(offsets),
            "crcs": add(crcs),
            "data": add(blob, True),
        }
    return {"kind": "json", "value": _tag(value)}


def _json_rows(items) -> tuple[bytes, bytes, bytes]:
    offsets, crcs, parts, at = array("q", [0]), array("I"), [], 0
    for item in items:
        data = json.dumps(_tag(item), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        parts.append(data)
        crcs.append(zlib.crc32(data))
        at += len(data)
        offsets.append(at)
    return offsets.tobytes(), b"".join(parts), crcs.tobytes()


def _tag(value):
    """JSON for a value, with tuples, non-string keys and records marked so
    that they come back as what they were."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if isinstance(value, tuple):
        return {"t": [_tag(v) for v in value]}
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {"m": {k: _tag(v) for k, v in value.items()}}
        return {"k": [[_tag(k), _tag(v)] for k, v in value.items()]}
    cls = type(value)
    if dataclasses.is_dataclass(value) and cls.__module__ in _RECORD_MODULES:
        return {"c": cls.__qualname__, "f": [_tag(getattr(value, f.name)) for f in dataclasses.fields(value)]}
    raise _Unsupported(f"cannot cache a {cls.__name__}")


def _untag(value):
    if type(value) is list:
        return [_untag(v) for v in value]
    if type(value) is not dict:
        return value
    if "t" in value:
        return tuple(_untag(v) for v in value["t"])
    if "m" in value:
        return {k: _untag(v) for k, v in value["m"].items()}
    if "k" in value:
        return {_untag(k): _untag(v) for k, v in value["k"]}
    return _record(value["c"])(*[_untag(v) for v in value["f"]])


@lru_cache(maxsize=None)  # noqa: UP033 (one entry per record type)
def _record(name: str):
    """A dataclass of natoqa's own, found by name: a cache file can name a
    record type, never code to run."""
    for module in _RECORD_MODULES:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ in _RECORD_MODULES:
            return cls
    raise CacheMiss(f"unknown record type {name}")


def write_locator(directory: Path, corpus: Corpus, key: str) -> dict | None:
    """Record where the corpus is and what its files looked like when read.

    Returns the locator it replaced when that one named another index (an
    edited document): its files may now be unused (see prune)."""
    docs = []
    for doc in corpus.documents:
        signature = list(getattr(doc, "signature", ()) or ())
        source = getattr(doc, "source", "")
        if not source or len(signature) != 6:
            return None  # a corpus not read from files: nothing to check later
        size, mtime, ctime, ino, dev, taken = signature
        trusted = taken - max(mtime, ctime) >= RACY_NS
        docs.append([source, doc.sha256, [size, mtime, ctime, ino, dev] if trusted else None, doc.path])
    locator = {
        "format": FORMAT,
        "named": corpus.root,
        "real": os.path.realpath(corpus.root),
        "index_md": getattr(corpus, "index_sha256", ""),
        "key": key,
        "fingerprint": corpus.fingerprint(),
        "title": corpus.title,
        "description": corpus.description,
        "warnings": list(corpus.warnings),
        "documents": docs,
    }
    path = _locator_path(directory, corpus.root)
    previous = _read_locator_quietly(path)
    if previous is not None and previous.get("key") == key and _keys(previous.get("dense")):
        # The same index: the dense vectors recorded for it still belong.
        locator["dense"] = _keys(previous.get("dense"))
    data = _locator_bytes(locator)
    try:
        if _read_cache_file(path) == data:
            return None
    except OSError:
        pass
    write_atomic(path, [data])
    return previous if previous is not None and previous.get("key") != key else None


def _locator_json(locator: dict) -> bytes:
    return json.dumps(locator, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _locator_bytes(locator: dict) -> bytes:
    """A locator as written: the sha256 of its JSON on a first line, then
    the JSON. The locator's paths and titles are shown as they are (a
    citation's path comes from it), so a damaged one that is still JSON
    must be told from a good one, as the index file's CRCs tell a damaged
    index. The digest is of the bytes as they lie in the file, so reading
    checks them without writing the JSON out again (at 10,000 documents,
    that took longer than the parse: 29 ms against 12)."""
    data = _locator_json(locator)
    return hashlib.sha256(data).hexdigest().encode("ascii") + b"\n" + data


def _read_locator(path: Path) -> dict | None:
    """The locator at `path`, or None when its digest does not match."""
    check, _, data = _read_cache_file(path).partition(b"\n")
    if check != hashlib.sha256(data).hexdigest().encode("ascii"):
        return None
    locator = json.loads(data)
    return locator if isinstance(locator, dict) else None


def _read_locator_quietly(path: Path) -> dict | None:
    try:
        return _read_locator(path)
    except (OSError, ValueError):
        return None  # missing, damaged or foreign: as good as none


# --- pruning -------------------------------------------------------------------

# What natoqa names its own files in the cache folder: nothing else there
# is ever removed.
_KEY = re.compile(r"[0-9a-f]{40}")
_DENSE_PARTS = ("", "-tokens", "-starts")


def _keys(value) -> list[str]:
    """The cache keys in a locator's field, anything else dropped (a
    locator is checked by its digest, not trusted to name only keys)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [k for k in value if isinstance(k, str) and _KEY.fullmatch(k)]


def remember_dense(directory: Path, corpus, key: str) -> None:
    """Note in the corpus's locator that `dense-<key>*.npy` are its dense
    vectors, so that prune removes them with the index they were made for."""
    path = _locator_path(directory, corpus.root)
    locator = _read_locator_quietly(path)
    if locator is None or locator.get("key") != content_key(corpus.fingerprint()):
        return  # no locator for this content: nothing to note it in
    dense = _keys(locator.get("dense"))
    if key in dense:
        return
    # A few at most: one for each model the corpus was asked with.
    locator["dense"] = (dense + [key])[-4:]
    try:
        write_atomic(path, [_locator_bytes(locator)])
    except OSError:
        pass  # only the pruning of these files is lost


def prune(directory: Path, replaced: dict | None, current: str) -> list[Path]:
    """Remove the cache files no corpus can use any more; the removed paths.

    Without this the cache only grows: each edit of a document gives a new
    index (hundreds of MB at 100,000 passages) and leaves the old one.
    Removed: the index and dense vectors of `replaced` (the locator an edit
    replaced), and those of a locator whose corpus is no longer where it
    was (a deleted folder, a temporary one), with that locator. Kept: any
    file another locator still names (two folders with the same content
    share an index), and `current`. Only natoqa's own names are touched
    (`index-<key>.nqi`, `dense-<key>*.npy`, `where-<key>.json`); a file
    that cannot be removed is left, and costs space only. A corpus on a
    drive that is not mounted just now loses its cached index, and gets
    it built again when next asked.
    """
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith("where-") and e.name.endswith(".json")]
    except OSError:
        return []
    indexes, dense, gone = set(), set(), []
    if replaced is not None:
        indexes.update(_keys(replaced.get("key")))
        dense.update(_keys(replaced.get("dense")))
    live = []
    for entry in entries:
        if not _KEY.fullmatch(entry.name[len("where-") : -len(".json")]):
            continue
        locator = _read_locator_quietly(Path(entry.path))
        if locator is None:
            continue
        real = locator.get("real")
        if isinstance(real, str) and os.path.isabs(real) and not os.path.lexists(real):
            gone.append(Path(entry.path))
            indexes.update(_keys(locator.get("key")))
            dense.update(_keys(locator.get("dense")))
        else:
            live.append(locator)
    for locator in live:
        indexes.difference_update(_keys(locator.get("key")))
        dense.difference_update(_keys(locator.get("dense")))
    indexes.discard(current)
    doomed = gone + [directory / f"index-{k}.nqi" for k in sorted(indexes)]
    doomed += [directory / f"dense-{k}{part}.npy" for k in sorted(dense) for part in _DENSE_PARTS]
    removed = []
    for path in doomed:
        try:
            path.unlink()
        except OSError:
            continue  # gone already (another natoqa pruned it), or not ours to remove
        removed.append(path)
    return removed


# --- reading -----------------------------------------------------------------


def _read_cache_file(path: Path) -> bytes:
    """A small cache file's bytes; OSError when it is not a regular file (a
    FIFO, a device), which a plain read would wait on or never finish."""
    with corpusmod.open_regular(path) as f:
        return f.read()


def read_index(path: Path, key: str, corpus) -> Index | None:
    """The cached index at `path` for this corpus, or None when there is none.

    Raises on a damaged file; the caller treats that as a miss.
    """
    try:
        # Not open(): a FIFO in the file's place would block it forever.
        f = corpusmod.open_regular(path)
    except FileNotFoundError:
        return None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < _HEAD.size:
            raise CacheMiss("truncated")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    magic, header_len, header_crc = _HEAD.unpack(mm[: _HEAD.size])
    if magic != MAGIC:
        raise CacheMiss("not a natoqa index")
    raw = mm[_HEAD.size : _HEAD.size + header_len]
    if len(raw) != header_len or zlib.crc32(raw) != header_crc:
        raise CacheMiss("damaged header")
    header = json.loads(raw)
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("key") != key:
        raise CacheMiss("another format or corpus")
    if header.get("byteorder") != sys.byteorder or header.get("natoqa") != __version__:
        raise CacheMiss("another machine or version")
    if header.get("fingerprint") != corpus.fingerprint():
        raise CacheMiss("another corpus")
    base = _HEAD.size + header_len
    if size != base + header["body_size"]:
        raise CacheMiss("truncated or padded")
    sections = _Sections(memoryview(mm)[base:], header["sections"])
    crcs = header["crcs"]
    if not isinstance(crcs, list) or len(crcs) != len(sections.layout):
        raise CacheMiss("damaged header")
    for i, crc in enumerate(crcs):
        if crc is not None and zlib.crc32(sections.raw(i)) != crc:
            raise CacheMiss("damaged section")
    return _restore(header, sections, _Healer(path, key, corpus))


class _Sections:
    def __init__(self, body: memoryview, layout):
        if not isinstance(layout, list):
            raise CacheMiss("bad layout")
        self.body = body
        self.layout = []
        for item in layout:
            offset, length = item
            if not (type(offset) is int and type(length) is int and 0 <= offset and offset + length <= len(body)):
                raise CacheMiss("section out of bounds")
            self.layout.append((offset, length))

    def raw(self, i) -> memoryview:
        offset, length = self.layout[i]
        return self.body[offset : offset + length]

    def typed(self, i, code: str, count: int | None = None) -> memoryview:
        view = self.raw(i)
        if len(view) % array(code).itemsize:
            raise CacheMiss("bad array")
        view = view.cast(code)
        if count is not None and len(view) != count:
            raise CacheMiss("bad array length")
        return view


def _restore(header: dict, sections: _Sections, healer: _Healer) -> Index:
    state = header["state"]
    if not isinstance(state, dict) or set(state) != set(Index.STATE):
        raise CacheMiss("another index layout")
    corpus = healer.corpus
    if isinstance(corpus, CachedCorpus):
        corpus._load_table(header, sections)
    index = Index.__new__(Index)
    index.corpus = corpus
    for name in Index.STATE:
        value = _decode_value(state[name], sections)
        if isinstance(value, (_Rows, _LazyMap)):
            value._name, value._healer = name, healer
        if isinstance(value, _FloatMap) and len(value) <= EAGER_FLOATS:
            value = value.whole()
        elif isinstance(value, _JsonMap) and len(value) <= EAGER_KEYS:
            value = _eager(value)
        setattr(index, name, value)
    return index


# Maps this small are read whole when the index is restored, into plain
# dicts: a question looks its words up in the IDF map and the title words'
# postings dozens of times, and a lookup in a dict is a C call where a lazy
# map's is three Python ones. Measured with callgrind, instructions per
# question: seed article -9%, SQuAD 2.0 dev (its 11,881 IDFs) -6%. Reading
# 50,000 IDFs costs about 10 ms; a JSON map decodes each value, about 4 ms
# per 1,000 keys, so only a small one is read whole.
EAGER_FLOATS = 50_000
EAGER_KEYS = 1_000


def _eager(value: _LazyMap):
    """The map as a dict, or the lazy map itself when an item is damaged
    (it heals when that item is read)."""
    try:
        return {key: value._value(i) for i, key in enumerate(value)}
    except _Damaged:
        return value


class _Damaged(Exception):
    """An item of the cache file whose CRC does not match."""


class _Healer:
    """What a lazy value falls back on when an item of the file turns out
    damaged: the index built afresh (and written back to the cache)."""

    def __init__(self, path: Path, key: str, corpus):
        self.path, self.key, self.corpus = path, key, corpus
        self._fresh: Index | None = None

    def value(self, name: str):
        if self._fresh is None:
            corpus = self.corpus
            if isinstance(corpus, CachedCorpus):
                corpus = corpus.full()
            self._fresh = build(corpus)
            try:
                write_index(self.path, self._fresh, self.key, corpus)
            except (OSError, ValueError, TypeError, _Unsupported):
                pass
        return getattr(self._fresh, name)


def _decode_value(spec: dict, sections: _Sections):
    kind = spec["kind"]
    if kind == "json":
        return _untag(spec["value"])
    if kind in ("bools", "ints", "floats"):
        code = {"bools": "B", "ints": "q", "floats": "d"}[kind]
        values = sections.typed(spec["data"], code).tolist()
        if kind == "bools":
            values = list(map(bool, values))
        return tuple(values) if spec["of"] == "tuple" else values
    if kind == "rows":
        n = spec["n"]
        codec = spec.get("codec", _TAGGED)
        if codec != _TAGGED and codec not in CODECS:
            raise CacheMiss(f"unknown codec {codec}")
        return _Rows(
            sections.typed(spec["offsets"], "q", n + 1),
            sections.typed(spec["crcs"], "I", n),
            sections.raw(spec["data"]),
            codec,
        )
    keys = _Keys(*[sections.typed(spec["keys"][0], "q", spec["n"] + 1), sections.raw(spec["keys"][1])])
    if kind == "floatmap":
        return _FloatMap(keys, sections.typed(spec["data"], "d", spec["n"]))
    if kind == "postings":
        offsets = sections.typed(spec["offsets"], "q", spec["n"] + 1)
        ids = sections.typed(spec["ids"], "i")
        weights = sections.typed(spec["weights"], "d", len(ids))
        return _Postings(keys, offsets, sections.typed(spec["crcs"], "I", spec["n"]), ids, weights)
    if kind == "map":
        n = spec["n"]
        rows = _Rows(
            sections.typed(spec["offsets"], "q", n + 1),
            sections.typed(spec["crcs"], "I", n),
            sections.raw(spec["data"]),
        )
        return _JsonMap(keys, rows)
    raise CacheMiss(f"unknown kind {kind}")


_TAGGED = "tagged"


class _Rows(dict):
    """A list whose items are decoded from JSON when first read.

    A dict of the items decoded so far, so that reading one again is a
    lookup in C: ranking reads some of these once per passage of a posting
    list. It behaves as a sequence: len, iteration and == go by position.
    """

    _name, _healer = "", None
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, offsets: memoryview, crcs: memoryview, data: memoryview, codec=None):
        super().__init__()
        self._offsets = offsets
        self._crcs = crcs
        self._data = data
        self._n = len(offsets) - 1
        # Items of a codec are plain JSON (natoqa.index.Packed); the others
        # carry _tag's marks.
        self._codec = codec if codec != _TAGGED else None

    def item(self, i):
        """Item i, decoded; _Damaged if its bytes are not what was written."""
        a, b = self._offsets[i], self._offsets[i + 1]
        if not 0 <= a <= b <= len(self._data):
            raise _Damaged(i)
        raw = self._data[a:b].tobytes()
        if zlib.crc32(raw) != self._crcs[i]:
            raise _Damaged(i)
        if self._codec is None:
            return _untag(json.loads(raw))
        decode = CODECS[self._codec]
        value = json.loads(raw)
        return value if decode is None else decode(value)

    def __missing__(self, i):
        if type(i) is not int:
            raise TypeError(f"indices must be integers, not {type(i).__name__}")
        if i < 0:
            if i < -self._n:
                raise IndexError(i)
            return self[i + self._n]
        if i >= self._n:
            raise IndexError(i)
        try:
            item = self.item(i)
        except _Damaged:
            return self._healer.value(self._name)[i]
        dict.__setitem__(self, i, item)
        return item

    def __len__(self):
        return self._n

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def __contains__(self, value):
        return any(v == value for v in self)

    def __eq__(self, other):
        return list(self) == list(other)


# After this many keys looked up by binary search, _Keys builds a table.
# A question looks up a few dozen (its words and their lexicon relatives:
# 30 for the median SQuAD 2.0 question asked of a fresh index, 79 at most
# of 200): one question never pays for the table, a batch soon does (1,000
# SQuAD 2.0 questions, 4.88M -> 4.80M instructions a question against 2,000).
TABLE_AFTER = 300


class _Keys:
    """Sorted keys on disk, found by binary search (or a table, see find)."""

    def __init__(self, offsets: memoryview, data: memoryview):
        self._offsets = offsets
        self._data = data
        self.n = len(offsets) - 1
        self._finds = 0
        self._table: dict[bytes, int] | None = None

    def __len__(self):
        return self.n

    def __getitem__(self, i) -> bytes:
        return self._data[self._offsets[i] : self._offsets[i + 1]].tobytes()

    def find(self, key) -> int:
        if type(key) is not str:
            return -1
        target = key.encode("utf-8", "surrogatepass")
        table = self._table
        if table is not None:
            return table.get(target, -1)
        self._finds += 1
        if self._finds > TABLE_AFTER:
            # A long run of questions: one pass over the keys builds a
            # table, cheaper from here on than a binary search in Python.
            data, offsets = self._data.tobytes(), self._offsets.tolist()
            self._table = table = {data[offsets[i] : offsets[i + 1]]: i for i in range(self.n)}
            return table.get(target, -1)
        i = bisect.bisect_left(self, target)
        return i if i < self.n and self[i] == target else -1

    def text(self, i) -> str:
        return self[i].decode("utf-8", "surrogatepass")


class _LazyMap(Mapping):
    _name, _healer = "", None

    def __init__(self, keys: _Keys):
        self._keys = keys
        self._memo: dict = {}

    def __len__(self):
        return self._keys.n

    def __iter__(self):
        return (self._keys.text(i) for i in range(self._keys.n))

    def __getitem__(self, key):
        try:
            value = self._memo[key]
        except (KeyError, TypeError):
            pass
        else:
            if value is _MISSING:
                raise KeyError(key)
            return value
        i = self._keys.find(key)
        if i < 0:
            # Misses are remembered too: a question's words that the corpus
            # lacks, and their lexicon relatives, are looked up again and
            # again, each a binary search over the keys on disk.
            if type(key) is str:
                if len(self._memo) >= _MEMO_MAX:
                    self._memo.clear()
                self._memo[key] = _MISSING
            raise KeyError(key)
        try:
            value = self._value(i)
        except _Damaged:
            return self._healer.value(self._name)[key]
        self._memo[key] = value
        return value

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return self.get(key, _MISSING) is not _MISSING


_MISSING = object()
# The most keys a _LazyMap remembers (found or missing): a bound on the
# memory of a long batch of questions full of words the corpus lacks.
_MEMO_MAX = 1_000_000


class _FloatMap(_LazyMap):
    def __init__(self, keys, values):
        super().__init__(keys)
        self._values = values

    def whole(self) -> dict[str, float]:
        """Every key and value, as a dict (the keys decoded in one pass)."""
        keys = self._keys
        data, offsets = keys._data.tobytes(), keys._offsets.tolist()
        names = [data[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(keys.n)]
        return dict(zip(names, self._values.tolist(), strict=True))

    def _value(self, i):
        return self._values[i]


class _Postings(_LazyMap):
    def __init__(self, keys, offsets, crcs, ids, weights):
        super().__init__(keys)
        self._offsets, self._crcs, self._ids, self._weights = offsets, crcs, ids, weights

    def _value(self, i):
        a, b = self._offsets[i], self._offsets[i + 1]
        if not 0 <= a <= b <= len(self._ids):
            raise _Damaged(i)
        ids, weights = self._ids[a:b], self._weights[a:b]
        if zlib.crc32(weights, zlib.crc32(ids)) != self._crcs[i]:
            raise _Damaged(i)
        return PostingList(ids, weights)

    def ids(self, term):
        found = self.get(term)
        return () if found is None else found.ids

    def arrays(self, term):
        found = self[term]
        return array("i", found.ids), array("d", found.weights)


class _JsonMap(_LazyMap):
    def __init__(self, keys, rows: _Rows):
        super().__init__(keys)
        self._rows = rows

    def _value(self, i):
        return self._rows.item(i)


# --- the warm path: a corpus known from the cache ----------------------------


def _open_cached(location, warn) -> Index | None:
    named = corpusmod.corpus_location(location)
    directory = cache_dir()
    try:
        locator = _read_locator(_locator_path(directory, named))
    except (OSError, ValueError):
        return None
    if locator is None or locator.get("format") != FORMAT or locator.get("named") != named:
        return None
    if locator.get("real") != os.path.realpath(named):
        return None
    if locator["index_md"] != corpusmod.index_digest(named):
        return None
    refreshed = False
    folder = os.path.isdir(named)
    seen = {}
    for entry in locator["documents"]:
        source, sha256, recorded, _ = entry
        signature = seen[source] = corpusmod.file_signature(source)
        if recorded is not None and list(signature[:5]) == recorded:
            continue
        # Changed, or recorded too soon after a change to be trusted: the
        # content decides. A document now a link leading out of the corpus
        # folder is one load_corpus refuses, whatever it holds: the cache
        # must not answer where --no-cache exits 3.
        if folder and os.path.commonpath([locator["real"], os.path.realpath(source)]) != locator["real"]:
            return None
        if corpusmod.file_digest(source) != sha256:
            return None
        size, mtime, ctime, ino, dev, taken = signature
        if taken - max(mtime, ctime) >= RACY_NS:
            entry[2] = [size, mtime, ctime, ino, dev]
            refreshed = True
    corpus = CachedCorpus(named, locator, seen)
    index = read_index(directory / f"index-{locator['key']}.nqi", locator["key"], corpus)
    if index is None:
        return None
    if refreshed and not _inside(directory, named):
        try:
            write_atomic(_locator_path(directory, named), [_locator_bytes(locator)])
        except OSError:
            pass  # only the fast check is lost
    return index


class CachedCorpus:
    """A corpus known from the cache: its passages are read from their
    files only when asked for, and checked against the recorded sha256."""

    def __init__(self, named: str, locator: dict, seen: dict | None = None):
        self.root = named
        # Each document file's stat signature when the cache was found
        # current (before any of its lines is read): see signed().
        self._seen = seen or {}
        self.title = locator["title"]
        self.description = locator["description"]
        self.warnings = tuple(locator["warnings"])
        self._fingerprint = locator["fingerprint"]
        self._sources = [entry[0] for entry in locator["documents"]]
        self._paths = [entry[3] for entry in locator["documents"]]
        self._full: Corpus | None = None

    def fingerprint(self) -> str:
        return self._fingerprint

    def files(self) -> tuple[str, ...]:
        return corpusmod.files_of(self.root, self._sources)

    def signed(self) -> dict[str, tuple[str, tuple, str]]:
        """As Corpus.signed: the signatures taken when the cache was checked
        (a change before a document's lines are read shows in its sha256)."""
        return {
            doc_id: (source, tuple(self._seen[source][:5]), sha256)
            for doc_id, _, sha256, source in getattr(self, "_docs", ())
            if source in self._seen
        }

    def _load_table(self, header: dict, sections: _Sections) -> None:
        docs = header["documents"]
        if len(docs) != len(self._sources):
            raise CacheMiss("document count")
        self._docs = [(d[0], d[1], d[2], source) for d, source in zip(docs, self._sources, strict=True)]
        n, table = header["passages"]
        self._table = sections.typed(table, "q", 3 * n)
        self._n = n
        self.passages = _CachedPassages(self)

    def _passage(self, p: int) -> Passage:
        t = self._table
        d, start, end = t[3 * p], t[3 * p + 1], t[3 * p + 2]
        doc_id, title, sha256, source = self._docs[d]
        lines = _document_lines(source, sha256)
        return Passage(p, doc_id, title, self._paths[d], start, end, "\n".join(lines[start - 1 : end]))

    def full(self) -> Corpus:
        """The corpus loaded for real, checked to be the one indexed."""
        if self._full is None:
            full = corpusmod.load_corpus(self.root)
            if full.fingerprint() != self._fingerprint:
                raise CorpusError(f"{self.root}: the corpus changed while natoqa was reading it; run again")
            self._full = full
        return self._full

    @property
    def documents(self):
        # Rarely needed on the answering path.
        return self.full().documents

    def document(self, doc_id: str):
        for doc in self.documents:
            if doc.id == doc_id:
                return doc
        return None


@lru_cache(maxsize=64)
def _document_lines(source: str, sha256: str) -> tuple[str, ...]:
    return corpusmod.read_verified_lines(source, sha256)


class _CachedPassages(Sequence):
    def __init__(self, corpus: CachedCorpus):
        self._corpus = corpus
        self._memo: dict[int, Passage] = {}

    def __len__(self):
        return self._corpus._n

    def __getitem__(self, p):
        if isinstance(p, slice):
            return [self[i] for i in range(*p.indices(len(self)))]
        try:
            return self._memo[p]
        except KeyError:
            pass
        if p < 0:
            p += len(self)
        if not 0 <= p < len(self):
            raise IndexError(p)
        passage = self._memo[p] = self._corpus._passage(p)
        return passage
