"""The two pieces of nltk natoqa uses, loaded without nltk's start-up cost.

`import nltk` runs nltk/__init__.py, which imports most of nltk (and scipy,
where it is installed): 0.25 s here, 1.3 s with scipy, several times what
natoqa spends answering a question. The Snowball stemmer and Punkt need
none of that: their modules import a handful of small nltk helpers. So the
first time one is needed, and only when nltk has not been imported already,
the modules are executed under placeholder parent packages that skip the
package __init__ files. The placeholders are removed again at once, so a
later `import nltk` anywhere in the process gets the real, complete package.
Neither piece needs downloaded data: the stemmer is pure code and Punkt is
given its abbreviations here instead of a trained model.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache

# Abbreviations after which a period does not end a sentence, lower-cased
# and without the final period, as Punkt stores them.
ABBREVIATIONS = frozenset(
    """
    u.s u.k u.n e.u u.s.s.r d.c a.m p.m e.g i.e etc vs al approx ca cf
    mr mrs ms dr prof sr jr st mt ft rev hon gov sen rep pres gen lt col maj
    capt cmdr adm sgt cpl pvt brig cmdr supt insp det
    inc ltd co corp bros dept univ assn no nos vol vols fig figs pp ed eds
    jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue tues wed thu thur thurs fri sat sun
    ave blvd rd
    """.split()
)


def _load_bare(module: str, parents: list[str]) -> types.ModuleType:
    """Import `module` with its parent packages' __init__ files skipped."""
    if "nltk" in sys.modules and not isinstance(sys.modules["nltk"], _Placeholder):
        return importlib.import_module(module)
    spec = importlib.util.find_spec("nltk")
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module(module)  # raises the usual ImportError
    root = list(spec.submodule_search_locations)[0]
    before = set(sys.modules)
    for parent in parents:
        placeholder = _Placeholder(parent)
        placeholder.__path__ = [root + parent[len("nltk") :].replace(".", "/")]
        sys.modules[parent] = placeholder
    # snowball.py imports nltk.corpus.stopwords at module level but only uses
    # it with ignore_stopwords=True, which natoqa never asks for.
    sys.modules["nltk.corpus"].stopwords = None  # type: ignore[attr-defined]
    # nltk 3.9.3 and later compile their patterns through nltk.redos, which
    # imports the third-party regex engine (14 ms of a first question) and
    # runs every search under a wall-clock limit of 5 s. snowball.py compiles
    # its Arabic stemmer's patterns so at import, and the English stemmer
    # applies none of them. Punkt searches each passage's whole text with
    # its patterns: on a passage of some megabytes a search runs past 5 s
    # and raises TimeoutError, so the document could never be indexed. Its
    # patterns are linear in the text with the stdlib's re (a 1.2 MB run of
    # "Mr. " splits in well under a second), so the stdlib compiles both.
    sys.modules["nltk.redos"] = _stdlib_redos()
    try:
        return importlib.import_module(module)
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


class _Placeholder(types.ModuleType):
    """A stand-in parent package whose __init__ has not run."""


def _stdlib_redos() -> types.ModuleType:
    """A stand-in for nltk.redos, for snowball.py's import: whatever it asks
    of it (compile, sub) is the stdlib re's (see _load_bare)."""
    import re

    redos = types.ModuleType("nltk.redos")
    redos.__getattr__ = lambda name: getattr(re, name)  # type: ignore[attr-defined]
    return redos


_PARENTS = ["nltk", "nltk.stem", "nltk.tokenize", "nltk.corpus"]


@lru_cache(maxsize=1)
def stemmer():
    """nltk's English Snowball stemmer."""
    snowball = _load_bare("nltk.stem.snowball", _PARENTS)
    return snowball.SnowballStemmer("english")


@lru_cache(maxsize=1)
def sentence_splitter():
    """nltk's Punkt sentence tokenizer, untrained, with known abbreviations."""
    punkt = _load_bare("nltk.tokenize.punkt", _PARENTS)
    params = punkt.PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return punkt.PunktSentenceTokenizer(params)
