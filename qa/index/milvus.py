"""The Milvus store: the same articles, chunks, vectors and BM25 as qa.index.store, held by Milvus.

Selected by QA_STORE=milvus://host:port[/name] (a server, over gRPC) or a path ending in .db (a
milvus-lite file); see qa.index.base and docs/scaling.md. Needs the extra `pip install '.[milvus]'`.

Collections (NAME = the name in QA_STORE, default news_qa; SET = one build, e.g. s18a2f3c4d5e6f708):

    NAME_meta           one row "pointer": format and version, the live SET and generation G,
                        embedder {name, dim}, chunking, dedup parameters, BM25 statistics, counters
    NAME_SET_chunks     one row per chunk: id, article_id, start, end, text, source_key, day,
                        ntok, born, died, dense (FLOAT_VECTOR, FLAT/IP), sparse (BM25, SPARSE_FLOAT_VECTOR)
    NAME_SET_articles   article rows: part 0 = the article's JSON without its text (with its MinHash
                        signature, LSH band keys and alternates' ids as scalar fields for lookups);
                        parts 1.. = the text in slices (a VARCHAR holds at most 64 KiB)
    NAME_SET_terms      one row per BM25 term: term, tid (its sparse dimension), df
    NAME_SET_quotes     one row per attributed quote (qa.quotes): article_id, speaker keys (the
                        words qa.quotes.speaker_keys finds it under, an ARRAY for lookups), the
                        Quote as JSON; versioned like the articles it belongs to

Guarantees, as for the files backend:

- **No reader sees half an update.** Rows are versioned: a row is visible at generation G when
  born <= G < died. An update inserts its rows with born = G+1, rewrites the rows it replaces with
  died = G+1, and only then moves the pointer to G+1 (one row: atomic). Every query filters on the
  generation it read from the pointer, so it sees generation G or G+1 whole. Rows dead before the
  previous generation are deleted after the switch. A build writes a new SET and switches the
  pointer to it; the previous SET is dropped at the next build. (Milvus aliases switch one
  collection at a time, so three collections could not switch together: the pointer row is our
  CURRENT file, and every replica reads it on each question.) A write that failed before its
  switch left rows for G+1 that no reader sees; the next write first undoes them
  (`_undo_unfinished`), so they are never committed with it.
- **The index version and the embedder are recorded and checked**: format, format version,
  embedder name and dimension live in the pointer and are checked when a store is opened and on
  every question (a rebuild with another embedder makes a running replica refuse, not mis-answer).
- **BM25 is computed here, not by a Milvus analyser**, with bm25s's tokenizer (the same call
  qa.retrieve makes), so tokens are identical in the embedded and the Milvus path and on every
  Milvus version with sparse vectors (2.4+; milvus-lite). A chunk's sparse vector holds the
  term-frequency part of BM25 (Lucene variant, k1 = 1.5, b = 0.75); the question's holds each
  term's IDF, from the document frequencies in NAME_SET_terms; their inner product is the BM25
  score bm25s computes. The average chunk length is fixed when a SET is built (updates reuse it,
  so scores drift slightly from a fresh build until the next `qa index build`).
- **One writer at a time**, as with the files backend's lock: Milvus has no transactions across
  rows, so two concurrent writers could both claim generation G+1. Run `qa index add/remove/watch`
  from one place.

Updates reuse qa.index.store's planning unchanged (add/update/remove by id, whole-file
supersession, near-duplicate collapse): the articles an update could touch — same ids, same
files, recorded copies, and those sharing a MinHash LSH band — are fetched from Milvus into an
in-memory IndexStore, the update runs there, and the difference is written back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..chunk import ChunkSpec
from ..embed import Embedder, passage_text
from ..errors import IndexCorrupt, IndexExists, IndexIncompatible, IndexNotFound, QAError
from ..ingest.dedup import DedupSpec, _band_keys
from ..ingest.formats import is_whole_file
from ..quotes import EXTRACTOR_VERSION, extract_quotes, speaker_keys
from ..records import Article, Chunk, Quote
from .store import IndexStore, UpdateReport

EXTRA = "pip install 'news-qa[milvus]'"
KINDS = ("chunks", "articles", "terms", "quotes")  # the collections of one SET
FORMAT = "news-qa-milvus"
FORMAT_VERSION = 1
ALIVE = 2**62  # `died` of a row no generation has retired
TEXT_PART_CHARS = 16_000  # 4 bytes per character at worst: under Milvus's 65,535-byte VARCHAR
MAX_ID_BYTES = 2_000
MAX_ALTERNATES = 1_024  # ids of recorded copies findable per article (ARRAY capacity)
BATCH = 1_000  # rows per insert/upsert
IN_BATCH = 256  # values per `x in [...]` filter
QUERY_LIMIT = 16_384  # Milvus's largest query window
# pymilvus pings idle connections every 10 s; gRPC servers with default settings (milvus-lite's)
# allow one ping per 5 minutes without calls and close the connection after two more, which
# breaks a replica idle for ~30 s. Milvus itself accepts both; this suits both.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 310_000}
MAX_SPEAKER_KEYS = 64  # words a quote is found under (qa.quotes.speaker_keys: names' first/last words, role nouns)
BM25_K1, BM25_B = 1.5, 0.75  # bm25s.BM25()'s defaults, which qa.retrieve uses


class MilvusUnavailable(QAError):
    """pymilvus is missing, or the Milvus server cannot be reached."""


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise MilvusUnavailable(f"QA_STORE names a Milvus store, but pymilvus is not installed: {EXTRA}") from None
    return pymilvus


def milvus_errors(method):
    """Milvus failures (server gone, timeouts, refused requests) become one-line MilvusUnavailable errors."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        pymilvus = _pymilvus()
        try:
            return method(self, *args, **kwargs)
        except pymilvus.MilvusException as exc:
            backend = getattr(self, "backend", self)
            raise MilvusUnavailable(f"{backend} failed: {str(exc.message)[:200]}") from None

    return wrapper


def bm25_tokens(texts: list[str]) -> list[list[str]]:
    """bm25s's tokenization (lower case, \\w\\w+ words, English stop words), exactly as qa.retrieve calls it."""
    import bm25s

    return bm25s.tokenize(texts, return_ids=False, show_progress=False)


def quote(value: str) -> str:
    """A Milvus expression string literal: double-quoted, backslashes and quotes escaped, no control characters."""
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_list(field: str, values: Iterable) -> str:
    items = [quote(v) if isinstance(v, str) else str(int(v)) for v in values]
    return f"{field} in [{', '.join(items)}]"


def day_number(published: str | None) -> int:
    """YYYYMMDD of an ISO date as an integer (0: no usable date) — what date filters compare."""
    if not published or len(published) < 10:
        return 0
    try:
        return int(datetime.fromisoformat(published[:10]).strftime("%Y%m%d"))
    except ValueError:
        return 0


def source_key(source: str | None) -> str:
    return (source or "").casefold()


@dataclass(frozen=True)
class Snapshot:
    """One generation of one SET, read from the pointer: every query of one question uses one snapshot."""

    pointer: dict

    @property
    def set(self) -> str:
        return self.pointer["set"]

    @property
    def generation(self) -> int:
        return int(self.pointer["generation"])

    @property
    def visible(self) -> str:
        g = self.generation
        return f"born <= {g} and died > {g}"

    @property
    def chunks(self) -> int:
        return int(self.pointer["counts"]["chunks"])


class MilvusBackend:
    """One Milvus deployment (server URI or milvus-lite file) and the collections under one name."""

    def __init__(self, uri: str, name: str, timeout: float = 30.0):
        self.uri = uri
        self.name = name
        self.timeout = timeout
        self._client = None

    def __str__(self) -> str:
        return f"Milvus {self.uri} ({self.name})"

    # ---- connection and schema ------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            pymilvus = _pymilvus()
            try:
                self._client = pymilvus.MilvusClient(uri=self.uri, timeout=self.timeout, grpc_options=GRPC_OPTIONS)
            except pymilvus.MilvusException as exc:
                raise MilvusUnavailable(f"cannot reach Milvus at {self.uri}: {exc.message}") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def meta_name(self) -> str:
        return f"{self.name}_meta"

    def collection(self, set_id: str, kind: str) -> str:
        return f"{self.name}_{set_id}_{kind}"

    def _create(self, name: str, fields: list[tuple], indexes: list[tuple]) -> None:
        pymilvus = _pymilvus()
        DataType = pymilvus.DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        for field, dtype, kwargs in fields:
            schema.add_field(field, getattr(DataType, dtype), **kwargs)
        params = self.client.prepare_index_params()
        for field, index_type, metric, extra in indexes:
            params.add_index(field_name=field, index_type=index_type, metric_type=metric, params=extra)
        self.client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        self.client.load_collection(name)

    def _ensure_meta(self) -> None:
        if not self.client.has_collection(self.meta_name):
            self._create(
                self.meta_name,
                [("key", "VARCHAR", {"is_primary": True, "max_length": 64}),
                 ("value", "VARCHAR", {"max_length": 65_535}),
                 ("v", "FLOAT_VECTOR", {"dim": 2})],
                [("v", "FLAT", "L2", {})],
            )

    def _create_set(self, set_id: str, dim: int, sparse: bool, bands: int) -> None:
        versioned = [("born", "INT64", {}), ("died", "INT64", {})]
        chunk_fields = [
            ("id", "INT64", {"is_primary": True}),
            ("article_id", "VARCHAR", {"max_length": MAX_ID_BYTES}),
            ("start", "INT64", {}), ("end", "INT64", {}),
            ("text", "VARCHAR", {"max_length": 65_535}),
            ("source_key", "VARCHAR", {"max_length": 2_000}),
            ("day", "INT64", {}), ("ntok", "INT64", {}),
            *versioned,
            ("dense", "FLOAT_VECTOR", {"dim": dim}),
        ]
        chunk_indexes = [("dense", "FLAT", "IP", {})]
        if sparse:
            chunk_fields.append(("sparse", "SPARSE_FLOAT_VECTOR", {}))
            chunk_indexes.append(("sparse", "SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": 0.0}))
        self._create(self.collection(set_id, "chunks"), chunk_fields, chunk_indexes)
        self._create(
            self.collection(set_id, "articles"),
            [("key", "VARCHAR", {"is_primary": True, "max_length": MAX_ID_BYTES + 40}),
             ("article_id", "VARCHAR", {"max_length": MAX_ID_BYTES}),
             ("part", "INT64", {}),
             ("origin_key", "VARCHAR", {"max_length": 64}),
             ("alt_ids", "ARRAY", {"element_type": _pymilvus().DataType.VARCHAR, "max_capacity": MAX_ALTERNATES,
                                   "max_length": MAX_ID_BYTES}),
             ("bands", "ARRAY", {"element_type": _pymilvus().DataType.INT64, "max_capacity": max(bands, 1)}),
             *versioned,
             ("body", "VARCHAR", {"max_length": 65_535}),
             ("v", "FLOAT_VECTOR", {"dim": 2})],
            [("v", "FLAT", "L2", {})],
        )
        self._create_quotes(set_id)
        self._create(
            self.collection(set_id, "terms"),
            [("term", "VARCHAR", {"is_primary": True, "max_length": 512}),
             ("tid", "INT64", {}), ("df", "INT64", {}),
             ("v", "FLOAT_VECTOR", {"dim": 2})],
            [("v", "FLAT", "L2", {})],
        )

    def _create_quotes(self, set_id: str) -> None:
        self._create(
            self.collection(set_id, "quotes"),
            [("key", "VARCHAR", {"is_primary": True, "max_length": MAX_ID_BYTES + 40}),
             ("article_id", "VARCHAR", {"max_length": MAX_ID_BYTES}),
             ("speakers", "ARRAY", {"element_type": _pymilvus().DataType.VARCHAR, "max_capacity": MAX_SPEAKER_KEYS,
                                    "max_length": 200}),
             ("born", "INT64", {}), ("died", "INT64", {}),
             ("body", "VARCHAR", {"max_length": 65_535}),
             ("v", "FLOAT_VECTOR", {"dim": 2})],
            [("v", "FLAT", "L2", {})],
        )

    def supports_sparse(self) -> bool:
        """Sparse vectors arrived in Milvus 2.4 (milvus-lite has them); 2.3 servers get the dense path only."""
        try:
            version = self.client.get_server_version()
        except Exception:  # noqa: BLE001 - milvus-lite answers no version; it has sparse vectors
            return True
        if version.startswith("milvus_lite"):  # "milvus_lite-3.2.2"; PyPI's milvus 2.3.5 says "v2.3.5-lite"
            return True
        found = re.search(r"(\d+)\.(\d+)", version)
        return found is None or (int(found[1]), int(found[2])) >= (2, 4)

    # ---- the pointer ----------------------------------------------------------------------------

    def pointer(self) -> dict | None:
        if not self.client.has_collection(self.meta_name):
            return None
        rows = self.client.query(self.meta_name, filter='key == "pointer"', output_fields=["value"])
        if not rows:
            return None
        try:
            pointer = json.loads(rows[0]["value"])
        except ValueError:
            raise IndexCorrupt(f"{self} is damaged: unreadable pointer; rebuild it with `qa index build`") from None
        if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
            raise IndexCorrupt(f"{self} does not hold a {FORMAT} index")
        if pointer.get("format_version") != FORMAT_VERSION:
            raise IndexIncompatible(
                f"{self} has format version {pointer.get('format_version')}, this version reads {FORMAT_VERSION}; "
                "rebuild it with `qa index build`"
            )
        return pointer

    def _switch(self, pointer: dict) -> None:
        """The commit: one row, so readers see the old or the new generation, never a mix."""
        self._ensure_meta()
        self.client.upsert(self.meta_name, [{"key": "pointer", "value": json.dumps(pointer), "v": [0.0, 0.0]}])

    @milvus_errors
    def exists(self) -> bool:
        return self.pointer() is not None

    @milvus_errors
    def snapshot(self) -> Snapshot:
        pointer = self.pointer()
        if pointer is None:
            raise IndexNotFound(f"no index in {self}: build one with `qa index build PATH...`")
        return Snapshot(pointer)

    # ---- reading ---------------------------------------------------------------------------------

    @milvus_errors
    def open(self, embedder: Embedder | None = None) -> MilvusStore:
        snap = self.snapshot()
        if embedder is not None:
            check_embedder(snap.pointer, embedder, str(self))
        return MilvusStore(self, snap.pointer)

    def query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict]:
        """Every row matching `expr` (Milvus caps one query's window, so this pages with an iterator)."""
        _quiet_iterator_log()
        iterator = self.client.query_iterator(collection, batch_size=1_000, filter=expr, output_fields=fields)
        try:
            while rows := iterator.next():
                yield from rows
        finally:
            iterator.close()

    def query_in(self, collection: str, field: str, values: Iterable, expr: str, fields: list[str]) -> list[dict]:
        values = list(dict.fromkeys(values))
        rows: list[dict] = []
        for i in range(0, len(values), IN_BATCH):
            where = f"({expr}) and {in_list(field, values[i:i + IN_BATCH])}"
            # One request answers almost every lookup (a question's terms, its passages' articles);
            # only a window that comes back full needs the paging iterator.
            found = self.client.query(collection, filter=where, output_fields=fields, limit=QUERY_LIMIT)
            rows.extend(found if len(found) < QUERY_LIMIT else self.query_all(collection, where, fields))
        return rows

    def articles(self, snap: Snapshot, ids: Iterable[str]) -> dict[str, Article]:
        parts = self.query_in(self.collection(snap.set, "articles"), "article_id", ids, snap.visible,
                              ["article_id", "part", "body"])
        return {a.id: a for a in _assemble(parts).values()}

    def article_rows(self, snap: Snapshot, expr: str) -> dict[str, tuple[Article, dict]]:
        """Articles whose part-0 row matches `expr`, with their part-0 metadata (signature)."""
        coll = self.collection(snap.set, "articles")
        heads = list(self.query_all(coll, f"({snap.visible}) and part == 0 and ({expr})", ["article_id"]))
        parts = self.query_in(coll, "article_id", [h["article_id"] for h in heads], snap.visible,
                              ["article_id", "part", "body"])
        return _assemble(parts, with_meta=True)

    # ---- writing ---------------------------------------------------------------------------------

    @milvus_errors
    def build(self, articles: Iterable[Article], embedder: Embedder, spec: ChunkSpec, progress: bool = False,
              dedup: DedupSpec | None = None, replace: bool = False, allow_empty: bool = False) -> tuple[MilvusStore, UpdateReport]:
        """A fresh SET with these articles; the pointer moves to it only once it is complete. An
        index already there is replaced only with replace=True, and never by an empty one (as
        qa.index.store.build_index)."""
        old = self.pointer()
        if old is not None and not replace:
            raise IndexExists(
                f"{self} already holds an index of {old['counts']['articles']} articles; pass --replace to replace it, "
                "or use `qa index add`"
            )
        articles = list(articles)
        if not articles and not allow_empty:
            raise QAError("nothing to index: no readable article in the given paths")
        set_id = f"s{time.time_ns():x}"
        dedup_params = _dedup_params(dedup or DedupSpec())
        sparse = self.supports_sparse()
        self._ensure_meta()
        self._create_set(set_id, embedder.dim, sparse, dedup_params["bands"])
        now = _now()
        pointer = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "set": set_id, "generation": 0,
            "embedder": {"name": embedder.name, "dim": embedder.dim},
            "chunking": {"target_words": spec.target_words, "max_words": spec.max_words,
                         "overlap_sentences": spec.overlap_sentences},
            "dedup": dedup_params, "sparse": sparse,
            "bm25": {"k1": BM25_K1, "b": BM25_B, "avgdl": None, "tokens": 0},
            "counts": {"articles": 0, "chunks": 0}, "next": {"chunk": 0, "term": 0},
            "quotes": {"extractor_version": EXTRACTOR_VERSION},
            "created_at": now, "updated_at": now,
        }
        try:
            pointer, report = self._write(pointer, embedder, spec, articles, (), progress, dedup)
        except BaseException:
            for kind in KINDS:
                self.client.drop_collection(self.collection(set_id, kind))
            raise
        self._switch(pointer)
        self._drop_sets(keep={set_id, old["set"]} if old else {set_id})
        return MilvusStore(self, pointer), report

    @milvus_errors
    def update(self, embedder: Embedder, spec: ChunkSpec, add: Iterable[Article] = (), remove: Iterable[str] = (),
               progress: bool = False, dedup: DedupSpec | None = None) -> tuple[MilvusStore, UpdateReport]:
        pointer = self.pointer()
        if pointer is None:
            store, report = self.build(add, embedder, spec, progress, dedup, allow_empty=True)
            report.missing = list(dict.fromkeys(remove))
            return store, report
        check_embedder(pointer, embedder, str(self))
        if dedup is not None and _dedup_params(dedup) != pointer["dedup"]:
            raise IndexIncompatible(f"{self} was built with other near-duplicate settings; rebuild it with `qa index build`")
        previous = int(pointer["generation"])
        new_pointer, report = self._write(pointer, embedder, ChunkSpec(**pointer["chunking"]), add, remove, progress, dedup)
        if new_pointer["generation"] != previous:
            self._switch(new_pointer)
            self._collect(Snapshot(new_pointer), previous)
        return MilvusStore(self, new_pointer), report

    def _write(self, pointer: dict, embedder: Embedder, spec: ChunkSpec, add: Iterable[Article],
               remove: Iterable[str], progress: bool, dedup: DedupSpec | None) -> tuple[dict, UpdateReport]:
        """Run the update on an in-memory view of the affected articles, then write the difference
        as generation G+1 (not yet visible: the caller switches the pointer)."""
        add, remove = list(add), list(dict.fromkeys(remove))
        snap = Snapshot(pointer)
        fresh = pointer["counts"]["articles"] == 0 and pointer["generation"] == 0
        if not fresh:
            self._undo_unfinished(snap)
        before = {} if fresh else self._affected(snap, add, remove, dedup)
        quoted = bool(pointer.get("quotes"))  # sets built before quotes have no quotes collection
        view = IndexStore(
            embedder.name, embedder.dim, spec,
            articles={k: a for k, (a, _) in before.items()},
            signatures={k: np.asarray(m["signature"], dtype=np.uint32) for k, (_, m) in before.items() if m.get("signature")},
            signature_params=pointer["dedup"]["signature_params"],
            # the affected articles' stored quotes, so that only new and changed articles are extracted
            quotes=self.quotes_of(snap, list(before)) if quoted else None,
            quotes_version=pointer["quotes"]["extractor_version"] if quoted else None,
        )
        report = view.remove(remove)
        added = view.add(add, embedder, progress=progress, dedup=dedup)
        report.added, report.updated, report.unchanged, report.chunks_added, report.collapsed = (
            added.added, added.updated, added.unchanged, added.chunks_added, added.collapsed,
        )
        old = {k: a for k, (a, _) in before.items()}
        after = view.articles
        changed = [a for a in after.values() if old.get(a.id) is not a]
        retired_articles = [k for k in old if k not in after or after[k] is not old[k]]
        rechunked = [k for k in old if k not in after or (after[k] is not old[k] and not _only_alternates(old[k], after[k]))]
        if not changed and not retired_articles:
            return pointer, report
        g = snap.generation + 1
        pointer = json.loads(json.dumps(pointer))  # a copy to advance
        retired_chunks = self._retire(snap, "chunks", "article_id", rechunked, g) if rechunked else []
        self._retire(snap, "articles", "article_id", retired_articles, g)
        self._insert_chunks(pointer, view, g, retired_chunks, fresh)
        self._insert_articles(pointer, view, changed, g)
        if quoted:  # quotes follow their articles: retired and written with them
            retired_quotes = self._retire(snap, "quotes", "article_id", retired_articles, g)
            written = self._insert_quotes(pointer, view, changed, g)
            pointer["counts"]["quotes"] = pointer["counts"].get("quotes", 0) + written - len(retired_quotes)
        for kind in self._kinds(pointer):  # seal what was written: queries then skip the write buffer
            self.client.flush(self.collection(pointer["set"], kind))
        pointer["counts"]["articles"] += len(changed) - len(retired_articles)
        pointer["generation"] = g
        pointer["updated_at"] = _now()
        return pointer, report

    def _undo_unfinished(self, snap: Snapshot) -> None:
        """A write that failed before its commit (server gone, a timeout, Ctrl-C) can leave rows of
        generation G+1 behind: new ones (born > G) and retired ones (G < died < ALIVE). No reader
        sees them, but the next write, which writes G+1 too, would commit them with its own (old
        rows doubled, retired ones gone). So every write first puts the set back as G left it.
        (BM25 document frequencies are not versioned: a failed write can leave them slightly off
        until the next `qa index build`, as updates' drift already does.)"""
        g = snap.generation
        for kind in ("chunks", "articles", "quotes"):
            coll = self.collection(snap.set, kind)
            if kind == "quotes" and not self.client.has_collection(coll):
                continue
            self.client.delete(coll, filter=f"born > {g}")
            stale = list(self.query_all(coll, f"died > {g} and died < {ALIVE}", ["*"]))
            for row in stale:
                row["died"] = ALIVE
            for i in range(0, len(stale), BATCH):
                self.client.upsert(coll, stale[i:i + BATCH])

    def _affected(self, snap: Snapshot, add: list[Article], remove: list[str], dedup: DedupSpec | None):
        """The stored articles an update of `add`/`remove` could read or change (see the module docstring)."""
        ids = [a.id for a in add] + remove
        found = {}
        exprs = []
        for i in range(0, len(ids), IN_BATCH):
            batch = ids[i:i + IN_BATCH]
            exprs.append(in_list("article_id", batch))
            exprs.append(f"array_contains_any(alt_ids, [{', '.join(quote(x) for x in batch)}])")
        origins = sorted({_origin_key(a.origin) for a in add if is_whole_file(a.origin)})
        for i in range(0, len(origins), IN_BATCH):
            exprs.append(in_list("origin_key", origins[i:i + IN_BATCH]))
        if dedup is not None and add:
            from ..ingest.dedup import signatures

            sigs = [s for s in signatures((a.text for a in add), dedup) if s is not None]
            keys = sorted({int(k) for s in sigs for k in band_keys(s[None, :], dedup)[0]})
            for i in range(0, len(keys), IN_BATCH):
                exprs.append(f"array_contains_any(bands, [{', '.join(map(str, keys[i:i + IN_BATCH]))}])")
        for expr in exprs:
            found.update(self.article_rows(snap, expr))
        return found

    def _retire(self, snap: Snapshot, kind: str, field: str, article_ids: list[str], g: int) -> list[dict]:
        """Rewrite the visible rows of these articles with died = g; returns the rows as they were."""
        coll = self.collection(snap.set, kind)
        return self._retire_rows(coll, self.query_in(coll, field, article_ids, snap.visible, ["*"]), g)

    def _retire_rows(self, coll: str, rows: list[dict], g: int) -> list[dict]:
        for row in rows:
            row["died"] = g
        for i in range(0, len(rows), BATCH):
            self.client.upsert(coll, rows[i:i + BATCH])
        return rows

    def _insert_chunks(self, pointer: dict, view: IndexStore, g: int, retired: list[dict], fresh: bool) -> None:
        chunks = view.chunks
        vectors = view.vectors.reconstruct_n(0, len(chunks)) if chunks else np.zeros((0, view.dim), np.float32)
        texts = [passage_text(view.articles[c.article_id].title, c.text) for c in chunks]
        tokens = bm25_tokens(texts) if texts else []
        bm25 = pointer["bm25"]
        if fresh or not bm25["avgdl"]:  # fixed per set: chunk weights stay comparable across updates
            lengths = [len(t) for t in tokens]
            bm25["avgdl"] = float(np.mean(lengths)) if lengths and sum(lengths) else None
        avgdl = bm25["avgdl"] or 1.0
        bm25["tokens"] += sum(len(t) for t in tokens) - sum(int(r["ntok"]) for r in retired)
        tids = self._update_terms(pointer, tokens, retired) if pointer["sparse"] else {}
        rows = []
        first = pointer["next"]["chunk"]
        for i, (chunk, vector, toks) in enumerate(zip(chunks, vectors, tokens)):
            article = view.articles[chunk.article_id]
            row = {
                "id": first + i, "article_id": chunk.article_id, "start": chunk.start, "end": chunk.end,
                "text": _clip(chunk.text), "source_key": _clip(source_key(article.source), 2_000),
                "day": day_number(article.published), "ntok": len(toks), "born": g, "died": ALIVE,
                "dense": vector.astype(np.float32).tolist(),
            }
            if pointer["sparse"]:
                row["sparse"] = _tf_weights(toks, tids, avgdl) or {_EMPTY_DIM: 0.0}
            rows.append(row)
        coll = self.collection(pointer["set"], "chunks")
        for i in range(0, len(rows), BATCH):
            self.client.insert(coll, rows[i:i + BATCH])
        pointer["next"]["chunk"] = first + len(rows)
        pointer["counts"]["chunks"] += len(rows) - len(retired)

    def _update_terms(self, pointer: dict, tokens: list[list[str]], retired: list[dict]) -> dict[str, int]:
        """Adjust document frequencies (+1 per new chunk holding a term, -1 per retired one); returns term → tid."""
        coll = self.collection(pointer["set"], "terms")
        plus = Counter(t for toks in tokens for t in set(toks))
        minus = Counter(int(k) for r in retired for k in (r.get("sparse") or {}) if int(k) != _EMPTY_DIM)
        rows = {r["term"]: r for r in self.query_in(coll, "term", plus, "tid >= 0", ["term", "tid", "df"])}
        by_tid = {r["tid"]: r for r in rows.values()}
        missing = [tid for tid in minus if tid not in by_tid]
        for r in self.query_in(coll, "tid", missing, "tid >= 0", ["term", "tid", "df"]):
            rows[r["term"]] = r
            by_tid[r["tid"]] = r
        for term, n in plus.items():
            if term not in rows:
                rows[term] = {"term": term, "tid": pointer["next"]["term"], "df": 0}
                by_tid[rows[term]["tid"]] = rows[term]
                pointer["next"]["term"] += 1
            rows[term]["df"] += n
        for tid, n in minus.items():
            by_tid[tid]["df"] -= n
        changed = [{"term": r["term"], "tid": r["tid"], "df": r["df"], "v": [0.0, 0.0]} for r in rows.values()
                   if r["term"] in plus or r["tid"] in minus]
        for i in range(0, len(changed), BATCH):
            self.client.upsert(coll, changed[i:i + BATCH])
        return {term: r["tid"] for term, r in rows.items()}

    def _insert_articles(self, pointer: dict, view: IndexStore, articles: list[Article], g: int) -> None:
        dedup = pointer["dedup"]
        spec = DedupSpec(**{k: dedup[k] for k in ("shingle_words", "num_perm", "bands", "rows", "seed")})
        rows = []
        for article in articles:
            if len(article.id.encode()) > MAX_ID_BYTES:
                raise QAError(f"article id {article.id[:60]!r}... is over {MAX_ID_BYTES} bytes, too long for the Milvus store")
            sig = view.signatures.get(article.id)
            meta = article.to_dict()
            text = meta.pop("text")
            parts = [text[i:i + TEXT_PART_CHARS] for i in range(0, len(text), TEXT_PART_CHARS)] or [""]
            meta["parts"] = len(parts)
            meta["signature"] = sig.tolist() if sig is not None else None
            body = json.dumps(meta, ensure_ascii=False)
            if len(body.encode()) > 65_535:
                raise QAError(f"article {article.id[:60]!r} has too many alternates or too long metadata for the Milvus store")
            head = {
                "key": f"{g:x}:0:{article.id}", "article_id": article.id, "part": 0,
                "origin_key": _origin_key(article.origin) if is_whole_file(article.origin) else "",
                "alt_ids": [a.id for a in article.alternates][:MAX_ALTERNATES],
                "bands": [int(k) for k in band_keys(sig[None, :], spec)[0]] if sig is not None else [],
                "born": g, "died": ALIVE, "body": body, "v": [0.0, 0.0],
            }
            rows.append(head)
            rows.extend(
                {"key": f"{g:x}:{n}:{article.id}", "article_id": article.id, "part": n, "origin_key": "",
                 "alt_ids": [], "bands": [], "born": g, "died": ALIVE, "body": part, "v": [0.0, 0.0]}
                for n, part in enumerate(parts, 1)
            )
        coll = self.collection(pointer["set"], "articles")
        for i in range(0, len(rows), BATCH):
            self.client.insert(coll, rows[i:i + BATCH])

    def _insert_quotes(self, pointer: dict, view: IndexStore, articles: list[Article], g: int) -> int:
        rows = [row for article in articles for row in _quote_rows(article.id, (view.quotes or {}).get(article.id, ()), g)]
        coll = self.collection(pointer["set"], "quotes")
        for i in range(0, len(rows), BATCH):
            self.client.insert(coll, rows[i:i + BATCH])
        return len(rows)

    @milvus_errors
    def upgrade(self, everything: bool = False) -> tuple[MilvusStore, int]:
        """Add quotes to a set stored before quotes were (or by an older extractor; every article's
        again with everything=True), without re-embedding: the quotes are extracted from the stored
        article texts and written as generation G+1, and the pointer moves to it (as an update
        does: a reader sees the old quotes, or none, until then, and then all the new ones).
        Returns the store and how many articles were extracted (0: already up to date)."""
        pointer = self.pointer()
        if pointer is None:
            raise IndexNotFound(f"no index in {self}: build one with `qa index build PATH...`")
        if (pointer.get("quotes") or {}).get("extractor_version") == EXTRACTOR_VERSION and not everything:
            return MilvusStore(self, pointer), 0
        snap = Snapshot(pointer)
        self._undo_unfinished(snap)  # what a failed write (an upgrade too) left for G+1
        g = snap.generation + 1
        coll = self.collection(snap.set, "quotes")
        if self.client.has_collection(coll):
            # Every visible quote row (an older extractor's, or rows a pointer without quotes ignored) retires at G+1.
            self._retire_rows(coll, list(self.query_all(coll, snap.visible, ["*"])), g)
        else:  # a set from before the quotes collection existed
            self._create_quotes(snap.set)
        written = extracted = 0
        ids = list(ArticleMap(self, snap))
        for i in range(0, len(ids), IN_BATCH):  # a page of articles at a time: memory stays bounded
            rows = []
            for article in self.articles(snap, ids[i:i + IN_BATCH]).values():
                rows.extend(_quote_rows(article.id, extract_quotes(article), g))
                extracted += 1
            for j in range(0, len(rows), BATCH):
                self.client.insert(coll, rows[j:j + BATCH])
            written += len(rows)
        self.client.flush(coll)
        pointer = json.loads(json.dumps(pointer))
        pointer["quotes"] = {"extractor_version": EXTRACTOR_VERSION}
        pointer["counts"]["quotes"] = written
        pointer["generation"] = g
        pointer["updated_at"] = _now()
        self._switch(pointer)
        self._collect(Snapshot(pointer), snap.generation)
        return MilvusStore(self, pointer), extracted

    def quotes_of(self, snap: Snapshot, article_ids: Iterable[str]) -> dict[str, list[Quote]]:
        """The quotes of these articles at this snapshot, in text order (every id gets a list)."""
        ids = list(article_ids)
        rows = self.query_in(self.collection(snap.set, "quotes"), "article_id", ids, snap.visible, ["body"]) if ids else []
        found: dict[str, list[Quote]] = {i: [] for i in ids}
        for quote in _quotes(rows):
            found.setdefault(quote.article_id, []).append(quote)
        return found

    def quotes_with_speakers(self, snap: Snapshot, keys: Iterable[str]) -> list[Quote]:
        """The quotes found under any of these speaker keys (qa.quotes.speaker_keys), by article and position."""
        keys = sorted({k[:200] for k in keys})
        if not keys:
            return []
        expr = f"{snap.visible} and array_contains_any(speakers, [{', '.join(quote(k) for k in keys)}])"
        return _quotes(self.query_all(self.collection(snap.set, "quotes"), expr, ["body"]))

    def _kinds(self, pointer: dict) -> tuple[str, ...]:
        return KINDS if pointer.get("quotes") else ("chunks", "articles", "terms")

    def _collect(self, snap: Snapshot, previous: int) -> None:
        """Delete rows no reader can see any more: retired before the previous generation."""
        for kind in ("chunks", "articles", "quotes") if snap.pointer.get("quotes") else ("chunks", "articles"):
            self.client.delete(self.collection(snap.set, kind), filter=f"died <= {previous}")

    def _drop_sets(self, keep: set[str]) -> None:
        prefix = f"{self.name}_s"
        for name in self.client.list_collections():
            if name.startswith(prefix) and name.rsplit("_", 1)[-1] in KINDS:
                set_id = name[len(self.name) + 1:].rsplit("_", 1)[0]
                if set_id not in keep:
                    self.client.drop_collection(name)

    def drop(self) -> None:
        """Remove every collection of this name (tests, `qa index build` into a fresh name)."""
        for name in self.client.list_collections():
            if name == self.meta_name or name.startswith(f"{self.name}_s"):
                self.client.drop_collection(name)


_EMPTY_DIM = 2**32 - 2  # a chunk with no BM25 term still needs a non-empty sparse vector


class MilvusStore:
    """A read handle on a Milvus index: the same reading surface as IndexStore (qa.index.base.Store).

    Every question reads the pointer once (`snapshot`) and runs all its queries at that generation,
    so replicas see updates at once without reloading, and never a half-written one.
    """

    # The files backend's generation directory, which qa.serve.engine watches to reload; a Milvus
    # store is never reloaded (every question reads the live generation), so there is none.
    generation = None

    def __init__(self, backend: MilvusBackend, pointer: dict):
        self.backend = backend
        self.pointer = pointer
        self.embedder_name = pointer["embedder"]["name"]
        self.dim = int(pointer["embedder"]["dim"])
        self.spec = ChunkSpec(**pointer["chunking"])

    @milvus_errors
    def snapshot(self) -> Snapshot:
        snap = self.backend.snapshot()
        if snap.pointer["embedder"] != self.pointer["embedder"]:
            raise IndexIncompatible(
                f"{self.backend} was rebuilt with embedder {snap.pointer['embedder']['name']}; restart with that embedder"
            )
        self.pointer = snap.pointer
        return snap

    @property
    def articles(self) -> ArticleMap:
        return ArticleMap(self.backend, self.snapshot())

    @property
    def chunk_count(self) -> int:
        return self.snapshot().chunks

    @milvus_errors
    def stats(self) -> dict:
        snap = self.snapshot()
        coll = self.backend.collection(snap.set, "articles")
        # Part-0 rows only: the metadata, not the text (one paged scan; cached by nobody, so /api/stats costs it).
        heads = [json.loads(row["body"]) for row in self.backend.query_all(coll, f"{snap.visible} and part == 0", ["body"])]
        return {
            "articles": snap.pointer["counts"]["articles"],
            "chunks": snap.chunks,
            "embedder": self.embedder_name,
            "dim": self.dim,
            "created_at": snap.pointer["created_at"],
            "updated_at": snap.pointer["updated_at"],
            "sources": sorted({h["source"] for h in heads if h.get("source")}),
            "alternates": sum(len(h.get("alternates") or ()) for h in heads),
            "quotes": snap.pointer["counts"].get("quotes", 0) if self.has_quotes(snap) else None,
            "store": str(self.backend),
            "generation": snap.generation,
        }

    @milvus_errors
    def search(self, snap: Snapshot, vector: np.ndarray, tokens: list[str], n: int, expr: str | None):
        """Dense and BM25 rankings of chunk ids (best first), each hit's (article_id, start, end), and
        the dense (cosine) and BM25 scores by chunk id."""
        coll = self.backend.collection(snap.set, "chunks")
        where = snap.visible + (f" and ({expr})" if expr else "")
        fields = ["article_id", "start", "end"]
        hits: dict[int, tuple[str, int, int]] = {}
        scores: list[dict[int, float]] = []

        def ranking(results) -> list[int]:
            ids = []
            scores.append({})
            for hit in results[0]:
                entity = hit["entity"]
                hits[int(hit["id"])] = (entity["article_id"], int(entity["start"]), int(entity["end"]))
                scores[-1][int(hit["id"])] = float(hit["distance"])
                ids.append(int(hit["id"]))
            return ids

        client = self.backend.client
        dense = ranking(client.search(coll, data=[vector.astype(np.float32).tolist()], anns_field="dense", limit=n,
                                      filter=where, output_fields=fields, search_params={"metric_type": "IP"}))
        sparse: list[int] = []
        query = self._bm25_query(snap, tokens) if snap.pointer.get("sparse") else {}
        if query:
            results = client.search(coll, data=[query], anns_field="sparse", limit=n, filter=where,
                                    output_fields=fields,
                                    search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}})
            # bm25s ranks only chunks with a positive score; ties broken by row, as np.argsort(stable) does
            scored = [(float(h["distance"]), int(h["id"])) for h in results[0] if float(h["distance"]) > 0]
            ranking(results)
            sparse = [i for _, i in sorted(scored, key=lambda s: (-s[0], s[1]))]
        return dense, sparse, hits, scores[0], scores[1] if len(scores) > 1 else {}

    def _bm25_query(self, snap: Snapshot, tokens: list[str]) -> dict[int, float]:
        """Query sparse vector: IDF (Lucene) per occurrence of each known term, as bm25s sums them."""
        if not tokens:
            return {}
        coll = self.backend.collection(snap.set, "terms")
        known = {r["term"]: r for r in self.backend.query_in(coll, "term", tokens, "df > 0", ["term", "tid", "df"])}
        n_docs = snap.chunks
        query: dict[int, float] = {}
        for term, count in Counter(t for t in tokens if t in known).items():
            df = int(known[term]["df"])
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
            query[int(known[term]["tid"])] = idf * count
        return query

    @milvus_errors
    def fetch_articles(self, snap: Snapshot, ids: Iterable[str]) -> dict[str, Article]:
        return self.backend.articles(snap, ids)

    # ---- quotes (qa.speakers reads them through these, one snapshot per question) ----------------

    @staticmethod
    def has_quotes(snap: Snapshot) -> bool:
        """False for a set built before quotes were stored in Milvus (rebuild it to add them)."""
        return bool(snap.pointer.get("quotes"))

    def article_map(self, snap: Snapshot) -> ArticleMap:
        return ArticleMap(self.backend, snap)

    @milvus_errors
    def quotes_with_speakers(self, snap: Snapshot, keys: Iterable[str]) -> list[Quote]:
        return self.backend.quotes_with_speakers(snap, keys) if self.has_quotes(snap) else []

    @milvus_errors
    def quotes_of(self, snap: Snapshot, article_id: str) -> list[Quote]:
        return self.backend.quotes_of(snap, [article_id])[article_id] if self.has_quotes(snap) else []

    @milvus_errors
    def chunk_spans(self, snap: Snapshot, article_ids: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """Each article's chunks as (id, start, end), in text order (one query for all of them)."""
        ids = list(article_ids)
        found: dict[str, list[tuple[int, int, int]]] = {i: [] for i in ids}
        for r in self.backend.query_in(self.backend.collection(snap.set, "chunks"), "article_id", ids, snap.visible,
                                       ["id", "article_id", "start", "end"]):
            found.setdefault(r["article_id"], []).append((int(r["id"]), int(r["start"]), int(r["end"])))
        return {i: sorted(spans, key=lambda c: (c[1], c[0])) for i, spans in found.items()}

    @milvus_errors
    def chunk_vectors(self, snap: Snapshot, ids: Iterable[int]) -> dict[int, np.ndarray]:
        rows = self.backend.query_in(self.backend.collection(snap.set, "chunks"), "id", ids, snap.visible, ["id", "dense"])
        return {int(r["id"]): np.asarray(r["dense"], dtype=np.float32) for r in rows}


class ArticleMap(Mapping):
    """The articles of one generation as a read-only mapping; lookups and iteration query Milvus."""

    def __init__(self, backend: MilvusBackend, snap: Snapshot):
        self.backend = backend
        self.snap = snap
        self._fetched: dict[str, Article] = {}  # one generation never changes: what was read once stays right

    def __getitem__(self, article_id: str) -> Article:
        if article_id not in self._fetched:
            self._fetched.update(self.backend.articles(self.snap, [article_id]))
        if article_id not in self._fetched:
            raise KeyError(article_id)
        return self._fetched[article_id]

    def fetch(self, article_ids: Iterable[str]) -> None:
        """Read these articles in one query (later lookups are then answered from memory)."""
        missing = [i for i in dict.fromkeys(article_ids) if i not in self._fetched]
        if missing:
            self._fetched.update(self.backend.articles(self.snap, missing))

    def __len__(self) -> int:
        return int(self.snap.pointer["counts"]["articles"])

    def __iter__(self) -> Iterator[str]:
        coll = self.backend.collection(self.snap.set, "articles")
        for row in self.backend.query_all(coll, f"{self.snap.visible} and part == 0", ["article_id"]):
            yield row["article_id"]

    def values(self) -> list[Article]:  # type: ignore[override] - one paged scan, not a query per id
        coll = self.backend.collection(self.snap.set, "articles")
        parts = self.backend.query_all(coll, self.snap.visible, ["article_id", "part", "body"])
        return list(_assemble(list(parts)).values())


class _NoMvccNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


@functools.cache
def _quiet_iterator_log() -> None:
    # milvus-lite has no MVCC timestamps; pymilvus's query iterator logs a warning for every scan
    # (on the user's terminal) and then does the right thing. Only that message is dropped.
    logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_NoMvccNotice())


def check_embedder(pointer: dict, embedder: Embedder, where: str) -> None:
    info = pointer.get("embedder") or {}
    if info.get("name") != embedder.name or info.get("dim") != embedder.dim:
        raise IndexIncompatible(
            f"{where} was built with embedder {info.get('name')} (dim {info.get('dim')}), but this service uses "
            f"{embedder.name} (dim {embedder.dim}); rebuild it with `qa index build`"
        )


def band_keys(sigs: np.ndarray, spec: DedupSpec) -> np.ndarray:
    """LSH band keys as int64 [rows × bands]: two signatures share a key iff they agree on that band
    (up to 64-bit hash collisions, which only add candidates that are then verified)."""
    out = np.zeros((len(sigs), spec.bands), dtype=np.int64)
    for band in range(spec.bands):
        keys = _band_keys(sigs[:, band * spec.rows:(band + 1) * spec.rows])
        out[:, band] = (keys * np.uint64(0x9E3779B97F4A7C15) + np.uint64(band)).view(np.int64)
    return out


def _dedup_params(spec: DedupSpec) -> dict:
    return {"signature_params": spec.signature_params, "shingle_words": spec.shingle_words, "num_perm": spec.num_perm,
            "bands": spec.bands, "rows": spec.rows, "seed": spec.seed}


def _tf_weights(tokens: list[str], tids: dict[str, int], avgdl: float) -> dict[int, float]:
    """The term-frequency half of Lucene BM25 for one chunk (bm25s's _score_tfc_lucene)."""
    norm = BM25_K1 * ((1 - BM25_B) + BM25_B * len(tokens) / avgdl)
    return {tids[t]: tf / (norm + tf) for t, tf in Counter(tokens).items()}


def _only_alternates(old: Article, new: Article) -> bool:
    return replace(new, alternates=old.alternates) == old


def _assemble(parts: list[dict], with_meta: bool = False) -> dict:
    """Articles from their part rows (part 0: JSON metadata, parts 1..: text slices)."""
    grouped: dict[str, dict[int, str]] = {}
    for row in parts:
        grouped.setdefault(row["article_id"], {})[int(row["part"])] = row["body"]
    out = {}
    for article_id, bodies in grouped.items():
        try:
            meta = json.loads(bodies[0])
            n = meta.pop("parts")
            text = "".join(bodies[i] for i in range(1, n + 1))
            extra = {k: meta.pop(k) for k in ("signature",) if k in meta}
            article = Article.from_dict({**meta, "text": text})
        except (KeyError, ValueError, TypeError) as exc:
            raise IndexCorrupt(f"article {article_id[:60]!r} in Milvus is damaged ({type(exc).__name__}); rebuild the index") from None
        out[article_id] = (article, extra) if with_meta else article
    return out


def _quote_rows(article_id: str, quotes: Iterable[Quote], g: int) -> list[dict]:
    """The quotes collection's rows for one article's quotes, born at generation g."""
    return [{
        "key": f"{g:x}:{n}:{article_id}", "article_id": article_id,
        "speakers": sorted(k[:200] for k in speaker_keys(q))[:MAX_SPEAKER_KEYS],
        "born": g, "died": ALIVE, "body": json.dumps(q.to_dict(), ensure_ascii=False), "v": [0.0, 0.0],
    } for n, q in enumerate(quotes)]


def _quotes(rows: Iterable[dict]) -> list[Quote]:
    """Quote rows → Quotes, by article and position (what the files backend's order is within an article)."""
    try:
        quotes = [Quote.from_dict(json.loads(row["body"])) for row in rows]
    except (KeyError, ValueError, TypeError) as exc:
        raise IndexCorrupt(f"a quote in Milvus is damaged ({type(exc).__name__}); rebuild the index") from None
    return sorted(quotes, key=lambda q: (q.article_id, q.start, q.end))


def _origin_key(origin: str | None) -> str:
    return hashlib.sha1((origin or "").encode()).hexdigest()


def _clip(text: str, limit: int = 65_535) -> str:
    """At most `limit` UTF-8 bytes (the chunk text is also rebuilt from the article's text on reading)."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
