"""The optional dense re-ranker (natoqa[dense]).

The tokenizer, the safetensors reader, the encoder's arithmetic and the
fusion run everywhere on tiny in-test data (numpy only). The tests that
need the MiniLM weights skip when the extra is not installed, as in CI.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from natoqa import dense  # noqa: E402

from .conftest import ROOT  # noqa: E402

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "the",
    "un",
    "##aff",
    "##able",
    "aff",
    "##a",
    "run",
    "##ning",
    ",",
    "!",
    "e",
]


def write_safetensors(path, tensors: dict) -> None:
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        code = {"float32": "F32", "int64": "I64", "int32": "I32", "float16": "F16"}[array.dtype.name]
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


# --- tokenizer -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello, World!", ["hello", ",", "world", "!"]),
        ("Café  déjà\tvu", ["cafe", "deja", "vu"]),
        ("$100^2", ["$", "100", "^", "2"]),
        ("a\u200bb\x00c", ["abc"]),  # format and control characters dropped
        ("北京abc", ["北", "京", "abc"]),
        ("U.S.", ["u", ".", "s", "."]),
        ("", []),
    ],
)
def test_basic_tokens(text, tokens):
    assert dense.basic_tokens(text) == tokens


@pytest.mark.parametrize(
    "word, pieces",
    [
        ("unaffable", ["un", "##aff", "##able"]),
        ("affa", ["aff", "##a"]),  # longest match first: "aff" before "a"
        ("running", ["run", "##ning"]),
        ("unx", ["[UNK]"]),  # one unmatched piece: the whole word is unknown
        ("e" * 101, ["[UNK]"]),  # over MAX_WORD characters
    ],
)
def test_wordpiece(word, pieces):
    wp = dense.WordPiece(VOCAB)
    assert [VOCAB[i] for i in wp.word(word)] == pieces


def test_encode_adds_cls_sep_and_truncates(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    wp = dense.WordPiece.from_file(path)
    assert [VOCAB[i] for i in wp.encode("The running, unaffable!")] == [
        "[CLS]", "the", "run", "##ning", ",", "un", "##aff", "##able", "!", "[SEP]",
    ]  # fmt: skip
    cut = wp.encode("the " * 50, max_tokens=8)
    assert len(cut) == 8 and cut[0] == wp.cls and cut[-1] == wp.sep


# --- safetensors -----------------------------------------------------------------


def test_read_safetensors_round_trip(tmp_path):
    tensors = {
        "a.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ids": np.array([[0, 1, 2]], dtype=np.int64),
        "half": np.array([1.5, -2.0], dtype=np.float16),
    }
    write_safetensors(tmp_path / "m.safetensors", tensors)
    read = dense.read_safetensors(tmp_path / "m.safetensors")
    assert set(read) == set(tensors)
    for name, array in tensors.items():
        assert read[name].shape == array.shape
        assert np.array_equal(read[name], array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x00", "shorter than its header"),
        (struct.pack("<Q", 1000) + b"{}", "exceeds the file"),
        (struct.pack("<Q", 2) + b"{}" + b"\0" * 4, None),  # no tensors: fine
    ],
)
def test_read_safetensors_headers(tmp_path, content, message):
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    if message is None:
        assert dense.read_safetensors(path) == {}
    else:
        with pytest.raises(ValueError, match=message):
            dense.read_safetensors(path)


def test_read_safetensors_bad_range(tmp_path):
    head = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"\0" * 16)
    with pytest.raises(ValueError, match="bad byte range"):
        dense.read_safetensors(path)


# --- the encoder, on a tiny random BERT --------------------------------------------


def tiny_model(tmp_path, seed: int = 0):
    rng = np.random.default_rng(seed)
    dim, ff, heads, layers = 8, 16, 2, 2
    r = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    t = {
        "embeddings.word_embeddings.weight": r(len(VOCAB), dim),
        # A row per position the tokenizer can fill (MAX_TOKENS), as the
        # encoder requires; the texts here need only the first few.
        "embeddings.position_embeddings.weight": np.concatenate(
            [r(32, dim), np.zeros((dense.MAX_TOKENS - 32, dim), np.float32)]
        ),
        "embeddings.token_type_embeddings.weight": r(2, dim),
        "embeddings.LayerNorm.weight": 1 + r(dim),
        "embeddings.LayerNorm.bias": r(dim),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            t[p + f"attention.self.{n}.weight"], t[p + f"attention.self.{n}.bias"] = r(dim, dim), r(dim)
        t[p + "attention.output.dense.weight"], t[p + "attention.output.dense.bias"] = r(dim, dim), r(dim)
        t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"] = 1 + r(dim), r(dim)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = r(ff, dim), r(ff)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = r(dim, ff), r(dim)
        t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"] = 1 + r(dim), r(dim)
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    write_safetensors(folder / "model.safetensors", t)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = {"num_attention_heads": heads, "num_hidden_layers": layers, "layer_norm_eps": 1e-12}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder, t


def reference_forward(t, ids, heads=2, layers=2, tokens=False):
    """A plain, one-text-at-a-time BERT forward pass, written independently:
    the pooled unit vector, or with `tokens` the last layer's states."""
    import math

    def ln(x, w, b):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12) * w + b

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n]
    x = ln(
        x + t["embeddings.token_type_embeddings.weight"][0],
        t["embeddings.LayerNorm.weight"],
        t["embeddings.LayerNorm.bias"],
    )
    x = x.astype(np.float64)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        lin = lambda v, name: v @ t[p + name + ".weight"].T + t[p + name + ".bias"]  # noqa: E731, B023
        q, k, v = (lin(x, f"attention.self.{m}") for m in ("query", "key", "value"))
        d = x.shape[1] // heads
        out = np.zeros_like(x)
        for h in range(heads):
            s = q[:, h * d : (h + 1) * d] @ k[:, h * d : (h + 1) * d].T / math.sqrt(d)
            w = np.exp(s - s.max(1, keepdims=True))
            out[:, h * d : (h + 1) * d] = (w / w.sum(1, keepdims=True)) @ v[:, h * d : (h + 1) * d]
        x = ln(
            x + lin(out, "attention.output.dense"),
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
        )
        x = ln(
            x + lin(gelu(lin(x, "intermediate.dense")), "output.dense"),
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
        )
    if tokens:
        return x
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_encoder_matches_reference_and_ignores_padding(tmp_path):
    folder, tensors = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    texts = ["the running", "unaffable, the affa run!", "e"]
    vectors = encoder.encode(texts, batch=3)  # one batch: the short texts are padded
    for text, vector in zip(texts, vectors, strict=True):
        expected = reference_forward(tensors, encoder.tokenizer.encode(text))
        assert np.allclose(vector, expected, atol=1e-5)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(encoder.encode(texts, batch=1), vectors, atol=1e-6)


def test_token_vectors_match_reference_and_maxsim(tmp_path):
    folder, tensors = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    texts = ["the running", "unaffable, the affa run!", "e"]
    vectors, per_text = encoder.encode(texts, batch=3, tokens=True)  # padded together
    assert np.allclose(vectors, encoder.encode(texts, batch=1), atol=1e-6)
    for text, tokens in zip(texts, per_text, strict=True):
        ids = encoder.tokenizer.encode(text)
        states = reference_forward(tensors, ids, tokens=True)[1:-1]  # no [CLS], no [SEP]
        assert tokens.shape == (len(ids) - 2, 8)
        assert np.allclose(tokens, states / np.linalg.norm(states, axis=1, keepdims=True), atol=1e-5)
    q, p = per_text[1], per_text[0]
    expected = sum(max(float(a @ b) for b in p) for a in q) / len(q)
    assert dense.maxsim(q, p) == pytest.approx(expected, abs=1e-6)
    assert dense.maxsim(q, q) == pytest.approx(1.0, abs=1e-5)  # every token meets itself
    assert dense.maxsim(q, p.astype(np.float16)) == pytest.approx(expected, abs=1e-3)
    assert dense.maxsim(q, p[:0]) == 0.0 and dense.maxsim(q[:0], p) == 0.0


def test_vectors_cached_as_plain_npy(tmp_path, tiny_corpus):
    from natoqa.corpus import load_corpus
    from natoqa.store import cache_dir, load_index

    folder, _ = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    index = load_index(load_corpus(str(tiny_corpus)), use_cache=False)
    first, tokens, starts = dense.index_arrays(encoder, index, folder)
    files = sorted(cache_dir().glob("dense-*.npy"))
    n_sentences = sum(len(s) for s in index.sentences)
    n = len(index.corpus.passages)
    assert first.shape == (n + n_sentences, 8)
    assert len(dense.inputs(index)) == len(first)
    key = dense.vectors_key(index, folder)
    vectors_file, tokens_file, starts_file = (
        cache_dir() / f"dense-{key}{part}.npy" for part in ("", "-tokens", "-starts")
    )
    assert files == sorted([vectors_file, tokens_file, starts_file])
    assert np.array_equal(np.load(vectors_file, allow_pickle=False), first)
    assert tokens.dtype == np.float16 and starts.shape == (n + 1,) and starts[-1] == len(tokens)
    # Each passage's token vectors are those of its own input, alone.
    for p, text in enumerate(dense.inputs(index)[:n]):
        alone = encoder.encode([text], tokens=True)[1][0]
        assert np.allclose(tokens[starts[p] : starts[p + 1]], alone, atol=2e-3)
    cached = dense.index_arrays(encoder, index, folder)  # from the cache, the same
    assert np.array_equal(cached[0], first) and np.array_equal(cached[1], tokens) and np.array_equal(cached[2], starts)
    good = [np.load(f, allow_pickle=False) for f in (vectors_file, tokens_file, starts_file)]
    huge = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }"
    huge = huge + b" " * (127 - len(huge)) + b"\n"
    npz = tmp_path / "foreign.npz"
    np.savez(npz, a=np.zeros(3))
    shifted = starts.copy()
    shifted[1] += 1  # well formed, and wrong
    for damaged in (vectors_file, tokens_file, starts_file):
        for content in (b"damaged", good[0][:1].tobytes(), huge, npz.read_bytes()):
            damaged.write_bytes(content)  # recomputed and rewritten, never trusted
            again, again_tokens, again_starts = dense.index_arrays(encoder, index, folder)
            assert np.allclose(again, first) and np.array_equal(again_starts, starts)
            assert np.allclose(np.asarray(again_tokens, dtype=np.float32), tokens.astype(np.float32), atol=1e-3)
            for f, expected in zip((vectors_file, tokens_file, starts_file), good, strict=True):
                assert np.allclose(np.load(f, allow_pickle=False).astype(np.float64), expected, atol=1e-3)
    # Offsets that agree with the file but not with the passages: each
    # passage's tokens are checked (count, unit length) when first needed.
    np.save(starts_file, shifted, allow_pickle=False)
    ranker = dense.DenseRanker(index, encoder, *dense.index_arrays(encoder, index, folder))
    assert np.array_equal(ranker.starts, shifted)
    for p, text in enumerate(dense.inputs(index)[:n]):
        assert np.allclose(ranker.passage_tokens(p), encoder.encode([text], tokens=True)[1][0], atol=2e-3)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_a_vectors_file_is_ignored_not_waited_on(tmp_path, tiny_corpus):
    folder, _ = tiny_model(tmp_path)
    cache = tmp_path / "cache"
    env = dict(os.environ, NATOQA_CACHE_DIR=str(cache), NATOQA_DENSE_MODEL=str(folder))
    # In a process of its own: np.load blocking on the FIFO would hang the suite.
    cmd = [sys.executable, "-m", "natoqa", "ask", "--dense", "--corpus", str(tiny_corpus), "-q", "What cuts wood?"]
    first = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    [path] = cache.glob("dense-*-starts.npy")
    path.unlink()
    os.mkfifo(path)
    again = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, b"")
    assert path.is_file()  # computed again and written back


@pytest.mark.parametrize("where", ["inside the corpus", "under a file"])
def test_dense_vectors_follow_the_index_cache_rules(runner, tmp_path, tiny_corpus, monkeypatch, where):
    # --dense wrote its vectors in a cache folder inside the corpus, that the
    # index had refused, and said a cache problem a second time.
    from natoqa.cli import cli

    folder, _ = tiny_model(tmp_path)
    monkeypatch.setenv("NATOQA_DENSE_MODEL", str(folder))
    if where == "inside the corpus":
        cache = tiny_corpus / ".cache"
        expected = f"natoqa: warning: cache folder {cache} is inside the corpus; not caching the index\n"
    else:
        (tmp_path / "a-file").write_text("")
        cache = tmp_path / "a-file" / "cache"
        expected = (
            f"natoqa: warning: cannot write the index cache in {cache}: "
            "a file is in the way (the cache needs a folder there)\n"
        )
    monkeypatch.setenv("NATOQA_CACHE_DIR", str(cache))
    before = sorted(p.name for p in tiny_corpus.rglob("*"))
    result = runner.invoke(cli, ["ask", "--dense", "--corpus", str(tiny_corpus), "-q", "What cuts wood?"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{tiny_corpus / 'tools.txt'}:3:24: A saw cuts wood.\n"
    assert result.stderr == expected
    assert sorted(p.name for p in tiny_corpus.rglob("*")) == before


def test_features_and_fuse():
    cosines = [[0.1, 0.2, 0.0, 0.2, 0.7], [0.5, 0.4, 0.3, 0.3, 0.6]]
    rows = dense.features([4.0, 2.0], [100, 1], cosines)
    assert rows.shape == (2, len(dense.FEATURES)) == (2, len(dense.WEIGHTS))
    assert rows[:, 0] == pytest.approx([1.0, 0.5])  # the lexical share of the best
    assert rows[:, 1:5] == pytest.approx(np.array(cosines)[:, :4])
    assert rows[:, 5] == pytest.approx([np.log(100), 0.0])
    assert rows[:, 6] == pytest.approx([0.7, 0.6])  # maxsim
    weights = (1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    assert dense.fuse([4.0, 2.0], [100, 1], cosines, weights) == pytest.approx([1.9, 2.1])
    assert dense.fuse([], [], np.zeros((0, 5))).shape == (0,)


def test_quote_offsets_invert_span_in_passage():
    from natoqa.answer import Answer, PassageRef, span_in_passage

    text = "First line.\nSecond line, a quote.\nThird."
    start = text.index("a quote")
    quote = span_in_passage(text, 7, start, start + len("a quote"))
    answer = Answer(1, 1.0, "d", "", "d.txt", quote, PassageRef(text, 7, 9), 1.0, ())
    assert dense._quote_offsets(answer) == (start, start + len("a quote"))


def test_missing_model_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NATOQA_DENSE_MODEL", str(tmp_path / "nowhere"))
    with pytest.raises(dense.DenseUnavailable, match="cannot read the dense model"):
        dense.Encoder.load()


@pytest.mark.parametrize("config", ["{}", "[]"])
def test_a_model_folder_without_the_model_shape_is_one_clear_error(monkeypatch, tmp_path, config):
    import struct

    (tmp_path / "config.json").write_text(config)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    header = b"{}"
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(dense.DenseUnavailable, match="cannot read the dense model"):
        dense.Encoder.load(tmp_path)


def _damage_model(folder, tensors, change):
    """Rewrite tiny_model's files with `change` (tensors, config, vocab) -> None applied."""
    tensors = dict(tensors)
    config = json.loads((folder / "config.json").read_text())
    vocab = list(VOCAB)
    change(tensors, config, vocab)
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")


_WORD, _POSITION, _LN = (
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.LayerNorm.weight",
)
_FF = "encoder.layer.1.intermediate.dense.weight"


@pytest.mark.parametrize(
    "change, message",
    [
        # Each of these was read without complaint: the shapes failed in the
        # first question's arithmetic (exit 70, "a bug in natoqa"), the rest
        # gave every passage a nonsense vector and answered.
        (lambda t, c, v: t.update({_WORD: t[_WORD].T.copy()}), "shape"),
        (lambda t, c, v: t.update({_POSITION: t[_POSITION][:32].copy()}), "shape"),
        (lambda t, c, v: t.update({_FF: t[_FF].reshape(8, 16).copy()}), "shape"),
        (lambda t, c, v: t.update({_LN: t[_LN][:4].copy()}), "shape"),
        (lambda t, c, v: c.update(num_attention_heads=3), "attention heads"),
        (lambda t, c, v: c.update(num_attention_heads=0), "attention heads"),
        (lambda t, c, v: c.update(layer_norm_eps=float("nan")), "layer_norm_eps"),
        (lambda t, c, v: t.update({_LN: t[_LN].view(np.int32)}), "not floating point"),
        (lambda t, c, v: t.update({_FF: np.where(t[_FF] > 0.5, np.nan, t[_FF]).astype(np.float32)}), "NaN"),
        (lambda t, c, v: v.extend(["extra", "words"]), "vocabulary"),  # ids past the embeddings
        (lambda t, c, v: v.pop(), "vocabulary"),  # a different vocabulary's ids
    ],
    ids=["word-transposed", "few-positions", "ff-reshaped", "ln-short", "heads-3", "heads-0", "eps-nan",
         "int32", "nan", "vocab-long", "vocab-short"],
)  # fmt: skip
def test_a_model_whose_tensors_do_not_fit_it_is_one_clear_error(tmp_path, change, message):
    folder, tensors = tiny_model(tmp_path)
    _damage_model(folder, tensors, change)
    with pytest.raises(dense.DenseUnavailable, match=f"cannot read the dense model in .*{message}"):
        dense.Encoder.load(folder)


def test_default_path_never_imports_dense_or_numpy():
    code = (
        "import sys\n"
        "from natoqa.cli import cli\n"
        "try:\n    cli.main(['ask', 'How many troops is the U.S. sending to Poland?'])\n"
        "except SystemExit:\n    pass\n"
        "print('natoqa.dense' in sys.modules, 'numpy' in sys.modules)\n"
    )
    # The first run builds the index (rank-bm25, and so numpy, may be used
    # then); a question answered from the cache imports neither.
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.splitlines()[-1] == "False False", done.stdout


# --- with the real MiniLM weights (skipped when the extra is absent) --------------------


def _has_model() -> bool:
    try:
        return (dense.model_dir() / "model.safetensors").is_file()
    except dense.DenseUnavailable:
        return False


needs_model = pytest.mark.skipif(not _has_model(), reason="the dense extra (MiniLM weights) is not installed")


@needs_model
def test_minilm_paraphrase_closer_than_unrelated():
    encoder = dense.Encoder.load()
    q, para, other = encoder.encode(
        [
            "Who leads the alliance as its top civilian official?",
            "NATO Secretary General Jens Stoltenberg said the alliance stands ready.",
            "Penguins cannot fly; they swim in cold southern seas.",
        ]
    )
    assert q @ para > q @ other + 0.2


@needs_model
def test_cli_dense_reranks_the_seed_article(runner):
    from natoqa.cli import cli

    question = "Who leads the alliance as its top civilian official?"
    result = runner.invoke(cli, ["ask", "--dense", "--json", "-k", "3", question], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.output)
    assert [a["rank"] for a in data["answers"]] == list(range(1, len(data["answers"]) + 1))
    for a in data["answers"]:  # every quote still verbatim at its coordinates
        lines = Path(a["path"]).read_text(encoding="utf-8").split("\n")
        quote = a["quote"]
        text = "\n".join(lines[quote["start_line"] - 1 : quote["end_line"]])
        start = quote["start_col"] - 1
        end = len(text) - len(lines[quote["end_line"] - 1]) + quote["end_col"]
        assert text[start:end] == quote["text"]


# --- the re-ranker, with the tiny random model --------------------------------------


def tiny_ranker(tmp_path, corpus_dir, **options):
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    folder, _ = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    index = load_index(load_corpus(str(corpus_dir)), use_cache=False)
    vectors, tokens, starts = dense.index_arrays(encoder, index, folder, use_cache=False)
    return dense.DenseRanker(index, encoder, vectors, tokens, starts, **options)


def test_a_single_file_corpus_named_in_bytes_not_utf8_gets_a_vectors_key(tmp_path):
    # Its document id is its file name: the key could not encode it (exit 70).
    import os

    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    path = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(path, "w") as f:
        f.write("The summit was held in Madrid.\n")
    folder, _ = tiny_model(tmp_path)
    index = load_index(load_corpus(os.fsdecode(path)), use_cache=False)
    assert len(dense.vectors_key(index, folder)) == 40


def test_damaged_token_vectors_are_computed_again(tmp_path, tiny_corpus):
    from natoqa.corpus import load_corpus
    from natoqa.store import cache_dir, load_index

    folder, _ = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    index = load_index(load_corpus(str(tiny_corpus)), use_cache=False)
    _, tokens, starts = dense.index_arrays(encoder, index, folder)
    good = np.array(tokens, dtype=np.float32)
    # A well-formed file whose numbers are damaged: the shapes all check out.
    damaged = np.array(tokens)
    damaged[starts[1] : starts[2]] = np.nan
    damaged[starts[2] : starts[3]] = 0.5  # finite, not unit vectors
    np.save(cache_dir() / f"dense-{dense.vectors_key(index, folder)}-tokens.npy", damaged, allow_pickle=False)
    ranker = dense.DenseRanker(index, encoder, *dense.index_arrays(encoder, index, folder))
    assert not np.isfinite(np.asarray(ranker.tokens[starts[1] : starts[2]], dtype=np.float32)).all()
    assert np.all(np.asarray(ranker.tokens[starts[2] : starts[3]]) == 0.5)
    for p in range(len(starts) - 1):
        assert np.allclose(ranker.passage_tokens(p), good[starts[p] : starts[p + 1]], atol=2e-3)


@pytest.mark.parametrize("damage", ["zeros", "scaled"])
def test_cached_vectors_that_are_not_unit_vectors_are_computed_again(tmp_path, tiny_corpus, damage):
    from natoqa.corpus import load_corpus
    from natoqa.store import cache_dir, load_index

    folder, _ = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    index = load_index(load_corpus(str(tiny_corpus)), use_cache=False)
    good = dense.index_arrays(encoder, index, folder)[0]
    # The file's shape, type and finiteness all check out; its numbers do not.
    damaged = np.array(good)
    if damage == "zeros":
        damaged[1:3] = 0.0  # a block of a file left zero-filled
    else:
        damaged *= 2.0
    path = cache_dir() / f"dense-{dense.vectors_key(index, folder)}.npy"
    np.save(path, damaged, allow_pickle=False)
    again = dense.index_arrays(encoder, index, folder)[0]
    assert np.allclose(again, good, atol=1e-6)
    assert np.allclose(np.load(path, allow_pickle=False), good, atol=1e-6)  # and written again


def test_token_memo_bounded_and_faithful(tmp_path, tiny_corpus, monkeypatch):
    ranker = tiny_ranker(tmp_path, tiny_corpus)
    n = len(ranker.starts) - 1
    expected = [np.asarray(ranker.tokens[ranker.starts[p] : ranker.starts[p + 1]], dtype=np.float32) for p in range(n)]
    monkeypatch.setattr(dense, "TOKENS_MEMO", 2)
    for _ in range(2):
        for p in range(n):
            assert ranker.passage_tokens(p).dtype == np.float32
            assert np.array_equal(ranker.passage_tokens(p), expected[p])
            assert len(ranker._checked) <= 2


def test_rerank_keeps_the_lexical_answers_and_renumbers(tmp_path, tiny_corpus):
    from natoqa.answer import ask

    ranker = tiny_ranker(tmp_path, tiny_corpus, weights=(1.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    question = "Which bird glides with the longest wingspan?"
    lexical = ask(ranker.index, question, top=dense.DEPTH)
    result = ranker.ask(question, top=3)
    assert result.answered
    assert [a.rank for a in result.answers] == list(range(1, len(result.answers) + 1))
    by_place = {(a.document, a.passage.start_line): a.quote for a in lexical.answers}
    for a in result.answers:  # the same quotes, only in another order
        assert by_place[(a.document, a.passage.start_line)] == a.quote
    scores = [a.score for a in result.answers]
    assert scores == sorted(scores, reverse=True)


def test_explain_of_reranked_answers_tells_the_fused_score_and_order(tmp_path, tiny_corpus):
    # --dense --explain showed the lexical score as "score" beside the
    # answer's fused one, and each answer's lexical runner-up: after a
    # re-ordering, answer 2's runner-up could be answer 1.
    from natoqa.answer import ask

    # The lexical order reversed.
    ranker = tiny_ranker(tmp_path, tiny_corpus, weights=(-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    question = "Which bird glides with the longest wingspan?"
    lexical = {(a.path, a.passage.start_line): a.score for a in ask(ranker.index, question, top=dense.DEPTH).answers}
    answers = ranker.ask(question, top=dense.DEPTH, explain=True).answers
    assert len(answers) >= 2
    assert [a.explain["dense"]["lexical_rank"] for a in answers] == list(range(len(answers), 0, -1))
    for a, after in zip(answers, answers[1:] + (None,), strict=True):
        assert a.explain["score"] == a.score == a.explain["dense"]["fused"]
        assert a.explain["lexical_score"] == lexical[(a.path, a.passage.start_line)]
        if after is None:
            assert "runner_up" not in a.explain
        else:
            assert a.explain["runner_up"] == {
                "path": after.path,
                "start_line": after.passage.start_line,
                "end_line": after.passage.end_line,
                "score": after.score,
            }


def test_lexical_result_carries_the_confidence_it_was_judged_by(tmp_path, tiny_corpus, monkeypatch):
    from natoqa import answer

    index = tiny_ranker(tmp_path, tiny_corpus).index
    question = "Which bird glides with the longest wingspan?"
    result = answer.ask(index, question, top=3)
    q = answer.analyse(index, question)
    first = answer.rank(index, q, answer.CANDIDATES, exact=1)[0]
    assert result.answered
    assert result.confidence == answer.confidence(index, q, first) >= answer.MIN_CONFIDENCE
    assert answer.ask(index, "zebra quagga okapi").confidence is None  # refused before ranking
    # Refused after ranking, on the first passage's confidence: no confidence either.
    monkeypatch.setattr(answer, "may_answer", lambda index, q: True)
    monkeypatch.setattr(answer, "MIN_CONFIDENCE", 1.01)
    refused = answer.ask(index, question)
    assert not refused.answered and refused.reason == answer.TOO_LITTLE and refused.confidence is None


def test_lexical_answer_without_the_questions_sense_is_withdrawn(tmp_path, tiny_corpus):
    from natoqa.answer import MIN_CONFIDENCE, ask

    # Fused by -maxsim alone, the re-ranked first answer is the lexical
    # answer with the lowest maxsim: the judged one must be it, not the
    # lexical first. fallback -1: a withdrawn answer shows no fallback ran.
    ranker = tiny_ranker(
        tmp_path, tiny_corpus, weights=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0), fallback=-1.0, answer_maxsim=None
    )
    question = "Which bird glides with the longest wingspan?"
    lexical = ask(ranker.index, question, top=dense.DEPTH)
    kept = ranker.ask(question, top=2)
    assert kept.answered and lexical.answered
    qv, qt = ranker.question_vectors(question)

    def maxsim(a):
        return dense.maxsim(qt, ranker.passage_tokens(ranker.row[(a.document, a.passage.start_line)]))

    assert maxsim(kept.answers[0]) < maxsim(lexical.answers[0]) - 1e-3
    excess = dense.CONFIDENCE_SLOPE * (lexical.confidence - MIN_CONFIDENCE)
    meant = maxsim(kept.answers[0]) + excess
    ranker.answer_maxsim = meant - 1e-6
    assert ranker.ask(question, top=2) == kept
    # Between the two passages' values: the fused first is judged.
    ranker.answer_maxsim = meant + 1e-6
    withdrawn = ranker.ask(question, top=2)
    assert not withdrawn.answered and withdrawn.answers == () and withdrawn.reason == dense.NOT_MEANT
    assert withdrawn.confidence is None
    # --explain gives the numbers in the reason.
    explained = ranker.ask(question, top=2, explain=True)
    assert not explained.answered and explained.reason.startswith(dense.NOT_MEANT + " (maxsim ")
    # rerank judges only when asked (bench/tools/abstain_fit.py re-ranks without judging).
    assert ranker.rerank(lexical, qv, qt, 2).answered


def test_cosines_of_passage_sentences_and_quote(tmp_path, tiny_corpus):
    from natoqa.answer import ask

    ranker = tiny_ranker(tmp_path, tiny_corpus)
    question = "Which bird glides with the longest wingspan?"
    answers = ask(ranker.index, question, top=dense.DEPTH, explain=True).answers
    qv, qt = ranker.question_vectors(question)
    assert np.allclose(qv, ranker.encoder.encode([question])[0], atol=1e-6)
    cosines = ranker.cosines(answers, qv, qt)
    assert cosines.shape == (len(answers), 5)
    for a, (passage, closest, second, quote, maxsim) in zip(answers, cosines, strict=True):
        p = ranker.row[(a.document, a.passage.start_line)]
        assert passage == pytest.approx(float(ranker.passages[p] @ qv), abs=1e-6)
        assert maxsim == pytest.approx(dense.maxsim(qt, ranker.passage_tokens(p)), abs=1e-6)
        assert closest >= second - 1e-9 and closest >= quote - 1e-9
        by_sentence = ranker._sentence_cosines(p, qv)
        assert min(abs(by_sentence - quote)) < 1e-6  # one of the passage's own sentences
    first = ranker.rerank(ask(ranker.index, question, top=dense.DEPTH, explain=True), qv, qt, 1).answers[0]
    assert set(first.explain["dense"]) >= {
        "cosine",
        "sentence_cosine",
        "second_sentence_cosine",
        "quote_cosine",
        "maxsim",
    }


def test_fallback_quotes_a_verbatim_sentence_only_when_asked(tmp_path, tiny_corpus):
    question = "zebra quagga okapi"  # no word of the corpus: the lexical engine abstains
    assert not tiny_ranker(tmp_path / "a", tiny_corpus, fallback=None).ask(question).answered
    ranker = tiny_ranker(tmp_path / "b", tiny_corpus, fallback=-1.0)
    result = ranker.ask(question, top=2)
    assert result.answered and [a.rank for a in result.answers] == [1, 2]
    for a in result.answers:
        doc = next(d for d in ranker.index.corpus.documents if d.id == a.document)
        assert doc.text_at(a.quote.start_line, a.quote.start_col, a.quote.end_line, a.quote.end_col) == a.quote.text
    assert not tiny_ranker(tmp_path / "c", tiny_corpus, fallback=1.01).ask(question).answered
    # The fallback's order and scores are the passages' maxsim, best first.
    _, qt = ranker.question_vectors(question)
    everything = ranker.ask(question, top=dense.FALLBACK_POOL)
    expected = sorted(
        (dense.maxsim(qt, ranker.passage_tokens(p)) for p in range(len(ranker.index.corpus.passages))), reverse=True
    )
    assert [a.score for a in everything.answers] == [round(x, 4) for x in expected[: len(everything.answers)]]
    assert len(everything.answers) == min(dense.FALLBACK_POOL, len(ranker.index.corpus.passages))


def test_fallback_answers_say_why_with_explain(tmp_path, tiny_corpus):
    # --explain gave the fallback's answers no explain at all, though the
    # README promises one for each answer.
    question = "zebra quagga okapi"
    ranker = tiny_ranker(tmp_path, tiny_corpus, fallback=-1.0)
    assert all(a.explain is None for a in ranker.ask(question, top=2).answers)
    answers = ranker.ask(question, top=2, explain=True).answers
    assert len(answers) == 2
    _, qt = ranker.question_vectors(question)
    for a in answers:
        p = ranker.row[(a.document, a.passage.start_line)]
        assert a.explain["maxsim"] == a.score == round(dense.maxsim(qt, ranker.passage_tokens(p)), 4)
        assert a.explain["fallback_threshold"] == -1.0
        assert a.explain["why"].startswith("the lexical engine declined (")


def test_fallback_that_declines_too_says_why_with_explain(tmp_path, tiny_corpus):
    # With --explain a withdrawn lexical answer gives its numbers, but when
    # the fallback found no passage either the reason was the lexical
    # engine's alone, as if --dense had not looked.
    question = "zebra quagga okapi"
    ranker = tiny_ranker(tmp_path, tiny_corpus, fallback=1.01)
    plain = ranker.ask(question, top=2)
    explained = ranker.ask(question, top=2, explain=True)
    assert not plain.answered and not explained.answered
    _, qt = ranker.question_vectors(question)
    best = max(ranker.fallback_pool(ranker.question_vectors(question)[0], qt)[1])
    assert explained.reason == (
        f"{plain.reason} (and of the {dense.FALLBACK_POOL} passages closest to the question, none has"
        f" a maxsim of 1.01: the best has {best:.3f})"
    )


def test_fallback_takes_the_closest_by_cosine_then_orders_by_maxsim(tmp_path, tiny_corpus, monkeypatch):
    from natoqa.answer import ask

    ranker = tiny_ranker(tmp_path, tiny_corpus, fallback=-1.0)
    abstained = ask(ranker.index, "zebra quagga okapi")  # no word of the corpus
    assert not abstained.answered
    # Vectors of another question, so that the passages' maxsims differ
    # (the tiny model's unknown words all look alike).
    qv, qt = ranker.question_vectors("Which bird glides with the longest wingspan?")
    n = len(ranker.index.corpus.passages)
    monkeypatch.setattr(dense, "FALLBACK_POOL", 2)
    closest = [int(p) for p in np.argsort(-(ranker.passages @ qv), kind="stable")[:2]]
    scores = {p: dense.maxsim(qt, ranker.passage_tokens(p)) for p in closest}
    by_maxsim = sorted(closest, key=lambda p: -scores[p])
    assert scores[by_maxsim[0]] > scores[by_maxsim[1]]

    def places(result):
        return [ranker.row[(a.document, a.passage.start_line)] for a in result.answers]

    result = ranker._fallback(abstained, qv, qt, n)
    assert places(result) == by_maxsim and [a.rank for a in result.answers] == [1, 2]
    # A threshold between the two scores keeps the better one only.
    ranker.fallback = (scores[by_maxsim[0]] + scores[by_maxsim[1]]) / 2
    assert places(ranker._fallback(abstained, qv, qt, n)) == by_maxsim[:1]


def test_sharing_gives_what_a_build_gives(tmp_path, tiny_corpus):
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    folder, _ = tiny_model(tmp_path)
    encoder = dense.Encoder.load(folder)
    index = load_index(load_corpus(str(tiny_corpus)), use_cache=False)
    built = dense.DenseRanker(index, encoder, *dense.index_arrays(encoder, index, folder, use_cache=False))
    known: dict = {}
    first = dense.DenseRanker.sharing(index, encoder, folder, known)
    assert len(known) >= len(dense.inputs(index))
    again = dense.DenseRanker.sharing(index, encoder, folder, known)  # from `known` alone
    for r in (first, again):
        assert np.allclose(r.passages, built.passages, atol=1e-6) and np.allclose(
            r.sentences, built.sentences, atol=1e-6
        )
        assert np.array_equal(r.starts, built.starts)
        assert np.allclose(np.asarray(r.tokens, np.float32), np.asarray(built.tokens, np.float32), atol=1e-3)


def test_a_model_with_the_same_file_sizes_gets_its_own_vectors(tmp_path):
    # The key held the model files' sizes only: a fine-tuned MiniLM has the
    # same tensors, so the same sizes, and was answered with the vectors
    # of the model before it.
    from natoqa.corpus import load_corpus
    from natoqa.store import load_index

    doc = tmp_path / "doc.txt"
    doc.write_text("The cat sat on the mat.\n", encoding="utf-8")
    index = load_index(load_corpus(str(doc)), use_cache=False)
    one, _ = tiny_model(tmp_path / "one", seed=0)
    two, _ = tiny_model(tmp_path / "two", seed=1)
    names = ("config.json", "vocab.txt", "model.safetensors")
    assert [(one / n).stat().st_size for n in names] == [(two / n).stat().st_size for n in names]
    assert dense.vectors_key(index, one) != dense.vectors_key(index, two)
    # The same model in another folder (a reinstall, a copy) keeps its vectors.
    copy = tmp_path / "copy"
    copy.mkdir()
    for n in names:
        (copy / n).write_bytes((one / n).read_bytes())
    assert dense.vectors_key(index, copy) == dense.vectors_key(index, one)


def test_the_vectors_key_reads_blocks_across_a_large_model_file(tmp_path, monkeypatch):
    # A file larger than the samples: a change anywhere a block is read
    # changes the key, the first block and the last included.
    monkeypatch.setattr(dense, "SAMPLES", 4)
    monkeypatch.setattr(dense, "SAMPLE_BYTES", 8)
    path = tmp_path / "model.safetensors"
    data = bytearray(range(100))
    path.write_bytes(bytes(data))
    base = dense._content_sample(path)
    for where in (0, 99):
        changed = bytearray(data)
        changed[where] ^= 0xFF
        path.write_bytes(bytes(changed))
        assert dense._content_sample(path) != base, where
