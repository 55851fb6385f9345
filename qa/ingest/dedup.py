"""Dedup: find near-duplicate articles (the same story syndicated with other boilerplate, another
headline or a few edited sentences) so the index keeps each story once.

Method (all parameters in `DedupSpec`, defaults documented in README.md):

1. The article *text* (not the title: syndicated copies often change the headline) is normalized —
   Unicode NFKC, lower case, words = runs of letters/digits, so punctuation, quotes and spacing do
   not matter — and cut into overlapping shingles of `shingle_words` = 5 words.
2. Each shingle set is summarized by a MinHash of `num_perm` = 128 permutations (datasketch 2.x's
   "affine32" scheme, seed 1, SHA-1-based 32-bit shingle hashes, computed here with NumPy): 512
   bytes per article, stable across processes, so the store persists them and never recomputes an
   indexed article's.
3. LSH banding (`bands` = 42 bands of `rows` = 3 rows, as datasketch's MinHashLSH) proposes
   candidates: a pair with Jaccard similarity J is proposed with probability 1 - (1 - J^3)^42,
   i.e. 0.996 at J = 0.5, 0.68 at J = 0.3, 0.04 at J = 0.1.
4. Each candidate is verified with the exact Jaccard similarity of the two shingle sets (after a
   cheap MinHash estimate rules out weak candidates). J >= `threshold` = 0.5 is a near-duplicate;
   identical normalized texts are exact duplicates (J = 1).

Texts under `min_words` = 30 words are never collapsed: too little text to tell a copy from a
coincidence (briefs, templated earnings lines).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Sequence

import numpy as np

from ..records import Article

WORD = re.compile(r"\w+")
SCHEME = "affine32"


@dataclass(frozen=True)
class DedupSpec:
    threshold: float = 0.5  # exact Jaccard similarity of word shingles at or above which texts are copies
    shingle_words: int = 5
    min_words: int = 30
    num_perm: int = 128
    bands: int = 42
    rows: int = 3
    seed: int = 1

    @classmethod
    def from_settings(cls, settings) -> DedupSpec | None:
        """The collapse configured by QA_DEDUP*, or None when QA_DEDUP=0 turns it off."""
        if not settings.dedup:
            return None
        return cls(settings.dedup_threshold, settings.dedup_shingle_words, settings.dedup_min_words)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("dedup threshold must be in (0, 1]")
        if self.shingle_words < 1 or self.min_words < 1:
            raise ValueError("dedup shingle_words and min_words must be >= 1")
        if self.bands * self.rows > self.num_perm or self.bands < 2:
            raise ValueError("dedup needs bands * rows <= num_perm and bands >= 2")

    @property
    def signature_params(self) -> dict:
        """What a stored signature depends on: signatures made with other values are recomputed."""
        return {"shingle_words": self.shingle_words, "num_perm": self.num_perm, "seed": self.seed,
                "scheme": SCHEME, "hash": "sha1_32", "normalize": "nfkc-lower-w+"}


@dataclass(frozen=True)
class Match:
    key: str  # the kept article's id
    similarity: float  # exact Jaccard similarity of the word shingles
    exact: bool  # identical normalized text


@dataclass
class Collapsed:
    """Result of collapsing a batch: articles kept, and each copy with the id it was collapsed into."""

    kept: list[Article] = field(default_factory=list)
    duplicates: list[tuple[Article, Match]] = field(default_factory=list)

    @property
    def exact(self) -> int:
        return sum(1 for _, m in self.duplicates if m.exact)

    @property
    def near(self) -> int:
        return len(self.duplicates) - self.exact


def words(text: str) -> list[str]:
    return WORD.findall(unicodedata.normalize("NFKC", text).lower())


def shingles(tokens: Sequence[str], k: int) -> set[str]:
    if len(tokens) < k:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def signatures(texts: Iterable[str], spec: DedupSpec) -> list[np.ndarray | None]:
    """MinHash signature (uint32[num_perm]) per text; None for texts under spec.min_words words.

    Bit for bit datasketch 2.x's MinHash(num_perm, seed, scheme="affine32") with its default SHA-1
    hash (tests/test_dedup.py checks this against datasketch): indexes store these signatures.
    Computed here because importing datasketch imports SciPy's integrate module (for an LSH
    parameter search this project does not use): +0.6 s and ~30 MB resident in every build.
    """
    a, b = _permutations(spec.num_perm, spec.seed)
    out: list[np.ndarray | None] = []
    for text in texts:
        tokens = words(text)
        if len(tokens) < spec.min_words:
            out.append(None)
            continue
        # sha1_32: the first 4 bytes of each shingle's SHA-1, little-endian.
        digests = b"".join(hashlib.sha1(s.encode("utf-8")).digest()[:4] for s in shingles(tokens, spec.shingle_words))
        hashes = _fmix32(np.frombuffer(digests, dtype="<u4").astype(np.uint32))
        out.append((hashes[:, None] * a + b).min(axis=0))  # uint32 arithmetic wraps: mod 2^32
    return out


@lru_cache(maxsize=4)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations h -> a*h + b mod 2^32 (a odd), drawn from RandomState(seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.flags.writeable = b.flags.writeable = False
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch applies to every hash before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signature(text: str, spec: DedupSpec) -> np.ndarray | None:
    return signatures([text], spec)[0]


class NearDuplicateIndex:
    """LSH over signatures, with exact verification; `text_of(key)` gives an indexed key's text.

    LSH banding: a key is filed under each of its `bands` slices of `rows` signature values, and
    the candidates for a probe are the keys that equal it on at least one whole band.
    """

    def __init__(self, spec: DedupSpec, text_of: Callable[[str], str]):
        self.spec = spec
        self.text_of = text_of
        self.sigs: dict[str, np.ndarray] = {}
        self._buckets: list[dict[bytes, set[str]]] = [{} for _ in range(spec.bands)]
        self._tokens: dict[str, list[str]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.sigs

    def __len__(self) -> int:
        return len(self.sigs)

    def add(self, key: str, sig: np.ndarray) -> None:
        self.discard(key)
        sig = np.asarray(sig, dtype=np.uint32)
        for bucket, band in zip(self._buckets, self._bands(sig)):
            bucket.setdefault(band, set()).add(key)
        self.sigs[key] = sig

    def add_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        for key, sig in items:
            self.add(key, sig)

    def discard(self, key: str) -> None:
        if key not in self.sigs:
            return
        for bucket, band in zip(self._buckets, self._bands(self.sigs.pop(key))):
            keys = bucket[band]
            keys.discard(key)
            if not keys:
                del bucket[band]
        self._tokens.pop(key, None)

    def candidates(self, sig: np.ndarray) -> set[str]:
        """Indexed keys equal to `sig` on at least one whole band."""
        found: set[str] = set()
        for bucket, band in zip(self._buckets, self._bands(np.asarray(sig, dtype=np.uint32))):
            found.update(bucket.get(band, ()))
        return found

    def find(self, text: str, sig: np.ndarray | None, tokens: list[str] | None = None) -> Match | None:
        """The most similar indexed text at or above the threshold, if any."""
        if sig is None or not self.sigs:
            return None
        spec = self.spec
        floor = max(0.0, spec.threshold - 0.2)  # MinHash estimate's std is <= 0.045 at 128 permutations
        candidates = [k for k in sorted(self.candidates(sig)) if float(np.mean(self.sigs[k] == sig)) >= floor]
        if not candidates:
            return None
        tokens = tokens if tokens is not None else words(text)
        mine = shingles(tokens, spec.shingle_words)
        best: Match | None = None
        for key in candidates:
            theirs_tokens = self._tokens.get(key)
            if theirs_tokens is None:
                theirs_tokens = self._tokens[key] = words(self.text_of(key))
            exact = theirs_tokens == tokens
            similarity = 1.0 if exact else jaccard(mine, shingles(theirs_tokens, spec.shingle_words))
            if similarity >= spec.threshold and (
                best is None or (exact, similarity, key) > (best.exact, best.similarity, best.key)
            ):
                best = Match(key, round(similarity, 4), exact)
        return best

    def _bands(self, sig: np.ndarray) -> list[bytes]:
        rows = self.spec.rows
        return [sig[i * rows : (i + 1) * rows].tobytes() for i in range(self.spec.bands)]


def index_against(
    spec: DedupSpec,
    text_of: Callable[[str], str],
    keys: Sequence[str],
    stored: np.ndarray,
    probes: Sequence[np.ndarray],
) -> NearDuplicateIndex:
    """An index of the stored signatures (rows of `stored`, named by `keys`) that can match a probe.

    Only signatures sharing at least one LSH band with some probe can ever be an LSH candidate,
    so a vectorized band comparison picks them first and only those enter the LSH: adding a
    few articles to a large index costs milliseconds instead of re-inserting every signature.
    """
    index = NearDuplicateIndex(spec, text_of)
    if len(keys) and len(probes):
        mask = rows_sharing_a_band(stored, np.stack(probes), spec)
        index.add_many((keys[i], stored[i]) for i in np.flatnonzero(mask))
    return index


def rows_sharing_a_band(stored: np.ndarray, probes: np.ndarray, spec: DedupSpec) -> np.ndarray:
    """Boolean mask of the rows of `stored` that equal some row of `probes` on a whole band (a superset)."""
    mask = np.zeros(len(stored), dtype=bool)
    for band in range(spec.bands):
        cols = slice(band * spec.rows, (band + 1) * spec.rows)
        mask |= np.isin(_band_keys(stored[:, cols]), _band_keys(probes[:, cols]))
    return mask


def _band_keys(block: np.ndarray) -> np.ndarray:
    keys = np.zeros(len(block), dtype=np.uint64)
    for j in range(block.shape[1]):  # polynomial hash, wrapping mod 2^64: equal bands give equal keys
        keys = keys * np.uint64(0x100000001B3) + block[:, j].astype(np.uint64)
    return keys


def collapse(
    articles: Sequence[Article], spec: DedupSpec | None = None, sigs: Sequence[np.ndarray | None] | None = None
) -> Collapsed:
    """Keep the first of each group of near-duplicates (in order); the others are reported with their match.

    A repeated id counts as an exact duplicate of its first occurrence. `sigs` are precomputed
    signatures (same order, same spec), e.g. to try several thresholds.
    """
    spec = spec or DedupSpec()
    texts: dict[str, str] = {}
    index = NearDuplicateIndex(spec, texts.__getitem__)
    result = Collapsed()
    if sigs is None:
        sigs = signatures((a.text for a in articles), spec)
    for article, sig in zip(articles, sigs):
        if article.id in texts:  # same id again: the store keeps one (an update or an identical re-add)
            result.duplicates.append((article, Match(article.id, 1.0, True)))
            continue
        match = index.find(article.text, sig)
        if match is not None:
            result.duplicates.append((article, match))
            continue
        result.kept.append(article)
        texts[article.id] = article.text
        if sig is not None:
            index.add(article.id, sig)
    return result
