"""Store: the on-disk index (FAISS vectors + article/chunk metadata + manifest).

Layout of an index directory (see index/README.md):

    CURRENT            name of the live generation directory (replaced atomically)
    gen-<id>/          one complete, immutable generation
        manifest.json  format, version, embedder, counts, chunking, sha256 of every file
        articles.jsonl one Article per line (with its full text)
        chunks.jsonl   [article_id, start, end] per line, in vector order
        vectors.faiss  FAISS IndexFlatIP of normalized embeddings (row i = chunk i)
        signatures.npy MinHash signature per article (row i = line i of articles.jsonl), for qa.ingest.dedup
        quotes.jsonl   attributed quotes of every article (qa.quotes), one per line

Every change writes a new generation in a temporary directory, renames it into place and only
then points CURRENT at it, so a crash or Ctrl-C at any moment leaves the previous index loadable.
The last `keep` generations stay (for `qa index rollback`); older ones are removed by the next
write, except one a reader is still loading (readers hold a shared flock on its manifest.json
while they load: a "lease"). See index/README.md for the guarantees.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..chunk import ChunkSpec, chunk_article
from ..wording import shown_path
from ..ingest.dedup import DedupSpec, Match, index_against, signatures as dedup_signatures
from ..embed import Embedder, passage_text
from ..ingest.formats import content_id, is_whole_file
from ..errors import IndexCorrupt, IndexExists, IndexIncompatible, IndexLoadError, IndexNotFound, IndexUnreadable, QAError
from ..interrupts import raise_if_interrupted
from ..quotes import EXTRACTOR_VERSION, extract_quotes, read_quotes, write_quotes
from ..records import Alternate, Article, Chunk, Quote
from . import ann

FORMAT = "news-qa-index"
FORMAT_VERSION = 1
GENERATION = re.compile(r"^gen-[0-9a-f-]+$")
FILES = ("articles.jsonl", "chunks.jsonl", "vectors.faiss", "signatures.npy", "quotes.jsonl", ann.ANN_FILE)
# absent from indexes written before near-duplicate collapse, and before quote extraction;
# vectors.ivf: only from Settings.ann_threshold chunks on (qa.index.ann).
OPTIONAL_FILES = ("signatures.npy", "quotes.jsonl", ann.ANN_FILE)
# Streamed adds (IndexStore.add_batches) embed and apply this much at a time, so memory does not
# grow with the input beyond the index itself.
BATCH_CHARS = 4_000_000
BATCH_ARTICLES = 2_000
KEEP_GENERATIONS = 2  # Settings.keep_generations: the live one and the one before it
SAVE_STEPS = ("written", "renamed", "renamed-synced", "pointer-written", "switched", "switch-synced")
Checkpoint = Callable[[str], None]


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    chunks_added: int = 0
    collapsed: dict[str, str] = field(default_factory=dict)  # near-duplicate id -> id of the article kept


@dataclass
class UpdatePlan:
    """What IndexStore.add will change, worked out before anything is embedded or modified."""

    indexed: dict[str, Article]  # the store's articles, read only
    report: UpdateReport = field(default_factory=UpdateReport)
    incoming: dict[str, Article] = field(default_factory=dict)  # to chunk, embed and (re)index
    owners: dict[str, Article] = field(default_factory=dict)  # indexed, only their alternates change
    superseded: set[str] = field(default_factory=set)  # ids of edited files' previous versions
    signatures: dict[str, np.ndarray | None] = field(default_factory=dict)  # of incoming articles
    # The indexed articles' signatures with any missing ones computed (installed by the update).
    stored_signatures: dict[str, np.ndarray] | None = None
    signature_params: dict | None = None

    def current(self, article_id: str) -> Article:
        """The article as it will be after the update."""
        return self.incoming.get(article_id) or self.owners.get(article_id) or self.indexed[article_id]

    def set_alternates(self, article_id: str, alternates: tuple[Alternate, ...]) -> None:
        changed = replace(self.current(article_id), alternates=alternates)
        if article_id in self.incoming:
            self.incoming[article_id] = changed
        else:
            self.owners[article_id] = changed


class IndexStore:
    """Articles, their chunks and one vector per chunk, kept in the same order."""

    def __init__(
        self,
        embedder_name: str,
        dim: int,
        spec: ChunkSpec,
        articles: dict[str, Article] | None = None,
        chunks: list[Chunk] | None = None,
        vectors=None,
        created_at: str | None = None,
        updated_at: str | None = None,
        signatures: dict[str, np.ndarray] | None = None,
        signature_params: dict | None = None,
        quotes: dict[str, list[Quote]] | None = None,
        quotes_version: int | None = None,
    ):
        import faiss

        self.embedder_name = embedder_name
        self.dim = dim
        self.spec = spec
        self.articles: dict[str, Article] = articles or {}
        self.chunks: list[Chunk] = chunks or []
        self.vectors = vectors if vectors is not None else faiss.IndexFlatIP(dim)
        self.created_at = created_at or _now()
        self.updated_at = updated_at or self.created_at
        self.generation: str | None = None  # the generation directory it was loaded from, if any
        # Set by load() for a large index (qa.index.ann): the approximate index, and vectors that are
        # memory-mapped read-only, so this store can be searched but not changed.
        self.ann = None
        self.read_only = False
        # MinHash signatures (qa.ingest.dedup) of the articles long enough to have one, made with signature_params.
        self.signatures: dict[str, np.ndarray] = signatures or {}
        self.signature_params = signature_params if signatures is not None else None
        # Quotes by article id (qa.quotes); None for an index written before them (`qa index upgrade`).
        self.quotes: dict[str, list[Quote]] | None = quotes
        self.quotes_version = quotes_version if quotes is not None else None
        if self.vectors.ntotal != len(self.chunks):
            raise IndexCorrupt(f"index has {self.vectors.ntotal} vectors but {len(self.chunks)} chunks")

    @classmethod
    def new(cls, embedder: Embedder, spec: ChunkSpec) -> IndexStore:
        return cls(embedder.name, embedder.dim, spec)

    # ---- updates -------------------------------------------------------------------------

    def add(
        self, articles: Iterable[Article], embedder: Embedder, progress: bool = False, dedup: DedupSpec | None = None
    ) -> UpdateReport:
        """Add new articles, replace changed ones, skip identical ones, collapse near-duplicates.

        An article replaces the indexed one with the same id; an article from a single-article
        file (.txt, .md, .html) also replaces the one read earlier from the same file, whose
        content-hash id changed when the file was edited. With `dedup`, a *new* article whose
        text is a near-duplicate (qa.ingest.dedup) of an indexed one or of an earlier one in the batch
        is not indexed but recorded in that article's `alternates`; re-adding such a copy
        unchanged is a no-op. Updates (same id) are never collapsed and keep their alternates.

        Three steps: plan what changes (nothing is modified), chunk and embed the articles to
        index, then apply. The store changes only after every embedding is computed, so an
        interrupted add leaves it as it was.
        """
        self._check_embedder(embedder)
        self._check_writable()
        plan = self._plan_update(articles, dedup)
        raise_if_interrupted()
        if not (plan.incoming or plan.owners):
            return plan.report
        new_chunks: list[Chunk] = []
        for article in plan.incoming.values():
            new_chunks.extend(chunk_article(article, self.spec, first_id=len(new_chunks)))
        texts = [passage_text(plan.incoming[c.article_id].title, c.text) for c in new_chunks]
        # A batch of only copies changes alternates alone: nothing to embed, no model to load.
        vectors = embedder.encode(texts, progress=progress) if texts else None
        quotes = {a.id: extract_quotes(a) for a in plan.incoming.values()}
        raise_if_interrupted()
        self._apply_update(plan, new_chunks, vectors)
        self.refresh_quotes(quotes)
        plan.report.chunks_added = len(new_chunks)
        return plan.report

    def add_batches(
        self,
        articles: Iterable[Article],
        embedder: Embedder,
        progress: bool = False,
        dedup: DedupSpec | None = None,
        batch_chars: int = BATCH_CHARS,
        batch_articles: int = BATCH_ARTICLES,
    ) -> UpdateReport:
        """`add` over a stream of articles, one batch (batch_chars of text or batch_articles) at a
        time: only a batch of articles, chunks and token ids is held besides the store itself.
        The store changes in memory batch by batch; nothing is written until `save`, so an
        interrupted add still leaves the index on disk as it was."""
        total = UpdateReport()
        added: set[str] = set()
        for batch in batches(articles, batch_chars, batch_articles):
            report = self.add(batch, embedder, progress=progress, dedup=dedup)
            added.update(report.added)
            total.added.extend(report.added)
            # An id added by an earlier batch and changed by a later one is still "added".
            total.updated.extend(i for i in report.updated if i not in added and i not in total.updated)
            total.unchanged.extend(report.unchanged)
            total.collapsed.update(report.collapsed)
            total.chunks_added += report.chunks_added
        return total

    def _plan_update(self, articles: Iterable[Article], dedup: DedupSpec | None) -> UpdatePlan:
        plan = UpdatePlan(self.articles)
        report, incoming = plan.report, plan.incoming
        from_file = {a.origin: a.id for a in self.articles.values() if is_whole_file(a.origin)}
        copies = {alt.id: (owner.id, alt) for owner in self.articles.values() for alt in owner.alternates}
        for article in articles:
            old = incoming.get(article.id) or self.articles.get(article.id)
            if old is not None and _same_content(old, article):
                report.unchanged.append(article.id)
                continue
            known = copies.get(article.id)
            if old is None and dedup is not None and known and known[1].content_id == content_id(article.title, article.text):
                report.unchanged.append(article.id)  # a copy already collapsed into an indexed article
                continue
            previous = from_file.get(article.origin) if is_whole_file(article.origin) else None
            if previous is not None and previous != article.id:
                plan.superseded.add(previous)
            if (article.id in self.articles or previous is not None) and article.id not in incoming:
                report.updated.append(article.id)
            elif article.id not in incoming:
                report.added.append(article.id)
            base = old or (self.articles.get(previous) if previous else None)
            if base is not None and base.alternates and not article.alternates:
                article = replace(article, alternates=base.alternates)  # an update keeps its copies
            incoming[article.id] = article
        if not incoming:
            return plan
        for article_id in list(incoming):
            if article_id in copies:  # a recorded copy is now indexed (or re-checked): drop the old record
                owner_id = copies[article_id][0]
                if owner_id in self.articles and owner_id not in plan.superseded:
                    plan.set_alternates(owner_id, tuple(a for a in plan.current(owner_id).alternates if a.id != article_id))
        if dedup is not None:
            self._collapse_near_duplicates(plan, dedup)
        return plan

    def _collapse_near_duplicates(self, plan: UpdatePlan, dedup: DedupSpec) -> None:
        """Moves each new article that copies an indexed or earlier one from plan.incoming into
        the kept article's alternates."""
        incoming = plan.incoming
        plan.signatures = dict(zip(incoming, dedup_signatures((a.text for a in incoming.values()), dedup)))
        matches = self._near_duplicates(plan, dedup)
        for article_id, match in matches.items():
            copy = incoming.pop(article_id)
            plan.report.added.remove(article_id)
            plan.report.collapsed[article_id] = match.key
            alternate = Alternate(
                id=copy.id, url=copy.url, source=copy.source, title=copy.title, published=copy.published,
                similarity=match.similarity, content_id=content_id(copy.title, copy.text),
            )
            kept = plan.current(match.key)
            plan.set_alternates(match.key, tuple(a for a in kept.alternates if a.id != copy.id) + (alternate,))
            plan.signatures.pop(article_id, None)

    def _apply_update(self, plan: UpdatePlan, new_chunks: list[Chunk], vectors: np.ndarray | None) -> None:
        if plan.stored_signatures is not None:
            self.signatures, self.signature_params = plan.stored_signatures, plan.signature_params
        self._drop((set(plan.incoming) & set(self.articles)) | plan.superseded)
        for article_id in plan.superseded:
            del self.articles[article_id]
            self.signatures.pop(article_id, None)
        offset = len(self.chunks)
        self.chunks.extend(Chunk(offset + c.id, c.article_id, c.text, c.start, c.end) for c in new_chunks)
        if len(new_chunks):
            self.vectors.add(vectors)
        self.articles.update(plan.incoming)
        self.articles.update(plan.owners)
        for article_id in plan.incoming:
            sig = plan.signatures.get(article_id)
            if sig is not None:
                self.signatures[article_id] = sig
            else:
                self.signatures.pop(article_id, None)  # recomputed when next needed
        self.updated_at = _now()

    def _near_duplicates(self, plan: UpdatePlan, spec: DedupSpec) -> dict[str, Match]:
        """New incoming articles that copy an indexed article or an earlier kept one in the batch."""
        incoming, sigs, updated = plan.incoming, plan.signatures, set(plan.report.updated)
        replaced = (set(incoming) & set(self.articles)) | plan.superseded
        plan.stored_signatures = known = self._stored_signatures(spec, skip=replaced)
        plan.signature_params = spec.signature_params

        def text_of(article_id: str) -> str:
            return incoming[article_id].text if article_id in incoming else self.articles[article_id].text

        keys = [k for k in known if k not in replaced and k in self.articles]
        stored = np.stack([known[k] for k in keys]) if keys else np.zeros((0, spec.num_perm), np.uint32)
        index = index_against(spec, text_of, keys, stored, [s for s in sigs.values() if s is not None])
        fresh = [a for a in incoming.values() if a.id not in updated]
        for article in incoming.values():  # updates first: they stay, and later copies collapse into them
            if article.id in updated and sigs.get(article.id) is not None:
                index.add(article.id, sigs[article.id])
        found: dict[str, Match] = {}
        for article in fresh:
            match = index.find(article.text, sigs.get(article.id))
            if match is not None:
                found[article.id] = match
            elif sigs.get(article.id) is not None:
                index.add(article.id, sigs[article.id])
        return found

    def _stored_signatures(self, spec: DedupSpec, skip: set[str] = frozenset()) -> dict[str, np.ndarray]:
        """The indexed articles' signatures, with those lacking one (indexes written before them,
        or with other parameters) computed; a new dict: the store is changed only by the update."""
        known = dict(self.signatures) if self.signature_params == spec.signature_params else {}
        missing = [a for a in self.articles.values() if a.id not in known and a.id not in skip]
        for article, sig in zip(missing, dedup_signatures((a.text for a in missing), spec)):
            if sig is not None:
                known[article.id] = sig
        return known

    def remove(self, article_ids: Iterable[str]) -> UpdateReport:
        self._check_writable()
        report = UpdateReport()
        ids = list(dict.fromkeys(article_ids))
        report.removed = [i for i in ids if i in self.articles]
        report.missing = [i for i in ids if i not in self.articles]
        if report.removed:
            self._drop(set(report.removed))
            for article_id in report.removed:
                del self.articles[article_id]
                self.signatures.pop(article_id, None)
            self.refresh_quotes()
            self.updated_at = _now()
        return report

    def refresh_quotes(self, extracted: dict[str, list[Quote]] | None = None, everything: bool = False) -> int:
        """Quotes follow their articles: `extracted` ones for new and replaced articles, none for removed
        ones; articles without quotes (an index written before them, or by an older extractor, or
        everything=True) get theirs extracted now. Returns how many articles were extracted here."""
        old = {} if everything or self.quotes is None or self.quotes_version != EXTRACTOR_VERSION else self.quotes
        extracted = extracted or {}
        fresh = 0
        quotes: dict[str, list[Quote]] = {}
        for article_id, article in self.articles.items():
            if article_id in extracted:
                quotes[article_id] = extracted[article_id]
            elif article_id in old:
                quotes[article_id] = old[article_id]
            else:
                quotes[article_id] = extract_quotes(article)
                fresh += 1
        self.quotes, self.quotes_version = quotes, EXTRACTOR_VERSION
        return fresh

    def _drop(self, article_ids: set[str]) -> None:
        """Remove the chunks (and vectors) of these articles, renumbering the rest in order."""
        if not article_ids:
            return
        import faiss

        rows = np.array([c.id for c in self.chunks if c.article_id in article_ids], dtype=np.int64)
        if len(rows):
            self.vectors.remove_ids(faiss.IDSelectorBatch(rows))
        kept = [c for c in self.chunks if c.article_id not in article_ids]
        self.chunks = [Chunk(i, c.article_id, c.text, c.start, c.end) for i, c in enumerate(kept)]

    def _check_writable(self) -> None:
        if self.read_only:  # FAISS aborts the process when a memory-mapped index is resized
            raise QAError("this index was loaded memory-mapped for searching; load it with writable=True to change it")

    def _check_embedder(self, embedder: Embedder) -> None:
        if embedder.name != self.embedder_name or embedder.dim != self.dim:
            raise IndexIncompatible(
                f"index was built with embedder {self.embedder_name} (dim {self.dim}), "
                f"not {embedder.name} (dim {embedder.dim}); rebuild it with `qa index build`"
            )

    # ---- reading -------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "articles": len(self.articles),
            "chunks": len(self.chunks),
            "embedder": self.embedder_name,
            "dim": self.dim,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "sources": sorted({a.source for a in self.articles.values() if a.source}),
            "alternates": sum(len(a.alternates) for a in self.articles.values()),
            "quotes": sum(map(len, self.quotes.values())) if self.quotes is not None else None,
        }

    # ---- persistence ---------------------------------------------------------------------

    def save(self, index_dir: Path, keep: int = KEEP_GENERATIONS, checkpoint: Checkpoint | None = None,
             ann_threshold: int = 0) -> Path:
        """Write a new generation and switch CURRENT to it atomically and durably; returns its directory.

        Order (each step durable before the next): the files and the directory gen-<id>.tmp are
        written and fsynced; it is renamed to gen-<id> and the index directory fsynced; CURRENT.tmp
        is written and fsynced, renamed over CURRENT, and the index directory fsynced again. A
        crash anywhere leaves CURRENT naming a complete generation. Then generations beyond the
        last `keep` of CURRENT's lineage are removed (see remove_old_generations). `checkpoint`
        is called with each step's name in SAVE_STEPS (tests inject crashes there). From
        `ann_threshold` chunks on (0: never) the generation also gets an approximate index (qa.index.ann).
        """
        import faiss

        step = checkpoint or _no_checkpoint
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        previous = current_generation(index_dir)
        name = f"gen-{time.time_ns():x}-{os.getpid():x}"
        tmp = index_dir / f"{name}.tmp"
        tmp.mkdir()
        try:
            with open(tmp / "articles.jsonl", "w", encoding="utf-8") as f:
                for article in self.articles.values():
                    f.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
                for chunk in self.chunks:
                    f.write(json.dumps([chunk.article_id, chunk.start, chunk.end], ensure_ascii=False) + "\n")
            faiss.write_index(self.vectors, str(tmp / "vectors.faiss"))
            if ann_threshold and len(self.chunks) >= ann_threshold:
                ann.write(self.vectors, tmp / ann.ANN_FILE)
            width = (self.signature_params or {}).get("num_perm", 0)
            rows = np.zeros((len(self.articles), width), dtype=np.uint32)  # all zeros: no signature
            for i, article_id in enumerate(self.articles):
                if width and article_id in self.signatures:
                    rows[i] = self.signatures[article_id]
            np.save(tmp / "signatures.npy", rows, allow_pickle=False)
            if self.quotes is None or self.quotes_version != EXTRACTOR_VERSION:
                self.refresh_quotes()
            write_quotes(tmp / "quotes.jsonl", (q for a in self.articles for q in self.quotes.get(a, ())))
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "embedder": {"name": self.embedder_name, "dim": self.dim},
                "chunking": {
                    "target_words": self.spec.target_words,
                    "max_words": self.spec.max_words,
                    "overlap_sentences": self.spec.overlap_sentences,
                },
                "counts": {"articles": len(self.articles), "chunks": len(self.chunks)},
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "signatures": self.signature_params,
                "quotes": {"extractor_version": self.quotes_version},
                # The generation this one replaced: `qa index rollback` and what is kept follow it.
                "previous": previous if previous and GENERATION.match(previous) else None,
                "files": {f: _sha256(tmp / f) for f in FILES if f not in OPTIONAL_FILES or (tmp / f).exists()},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _fsync_dir_files(tmp)
            _fsync(tmp)
            step("written")
            raise_if_interrupted()  # the last point where Ctrl-C leaves the index as it was
            os.rename(tmp, index_dir / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        step("renamed")
        _fsync(index_dir)  # the new name is on disk before CURRENT can point at it
        step("renamed-synced")
        _point_current(index_dir, name, step)
        remove_old_generations(index_dir, keep)
        return index_dir / name

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder | None = None, generation: str | None = None,
             writable: bool = False) -> IndexStore:
        """Load and verify the live generation (or the named one); any problem is a one-line IndexLoadError.

        A generation with an approximate index (qa.index.ann) is memory-mapped for searching unless `writable`.

        The generation is leased while it loads (a shared flock on its manifest.json), so no
        writer removes it meanwhile. If a writer removed it between reading CURRENT and taking the
        lease, the load is retried once with the new CURRENT.
        """
        index_dir = Path(index_dir)
        if generation is not None:
            try:
                return cls._load_generation(index_dir, generation, embedder, writable)
            except _Vanished:
                raise IndexNotFound(f"index {index_dir} has no generation {generation[:60]!r}; see `qa index history`") from None
        name = _read_current(index_dir)
        try:
            return cls._load_generation(index_dir, name, embedder, writable)
        except _Vanished:
            pass
        retry = _read_current(index_dir)
        try:
            return cls._load_generation(index_dir, retry, embedder, writable)
        except _Vanished:
            if retry == name:
                raise IndexCorrupt(
                    f"index {index_dir} is damaged: CURRENT names a missing generation {name[:60]!r}; "
                    "run `qa index repair`"
                ) from None
            raise IndexLoadError(f"index {index_dir} changed twice while loading; try again") from None

    @classmethod
    def _load_generation(cls, index_dir: Path, name: str, embedder: Embedder | None, writable: bool) -> IndexStore:
        if not GENERATION.match(name):
            raise IndexCorrupt(
                f"index {index_dir} is damaged: CURRENT holds {name[:60]!r}, not a generation name; run `qa index repair`"
            )
        gen = index_dir / name
        try:
            with _lease(gen):
                store = cls._read(index_dir, gen, embedder, writable)
                store.generation = name
                return store
        except OSError as exc:
            raise IndexUnreadable(f"cannot read index {index_dir}: {_os_reason(exc)}") from None

    @classmethod
    def _read(cls, index_dir: Path, gen: Path, embedder: Embedder | None, writable: bool) -> IndexStore:
        import faiss

        manifest = _read_manifest(gen)
        embedder_info = manifest.get("embedder") or {}
        if embedder is not None and (embedder_info.get("name") != embedder.name or embedder_info.get("dim") != embedder.dim):
            raise IndexIncompatible(
                f"index {index_dir} was built with embedder {embedder_info.get('name')} "
                f"(dim {embedder_info.get('dim')}), but this service uses {embedder.name} "
                f"(dim {embedder.dim}); rebuild it with `qa index build`"
            )
        _verify_files(index_dir, gen, manifest)
        try:
            articles = {}
            with open(gen / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    article = Article.from_dict(json.loads(line))
                    articles[article.id] = article
            signatures, signature_params = _read_signatures(gen, manifest, list(articles))
            quotes = read_quotes(gen / "quotes.jsonl", articles) if "quotes.jsonl" in manifest["files"] else None
            chunks = []
            with open(gen / "chunks.jsonl", encoding="utf-8") as f:
                for i, line in enumerate(f):
                    article_id, start, end = json.loads(line)
                    chunks.append(Chunk(i, article_id, articles[article_id].text[start:end], start, end))
            mapped = not writable and ann.ANN_FILE in manifest["files"]
            vectors = ann.read_mapped(gen / "vectors.faiss") if mapped else faiss.read_index(str(gen / "vectors.faiss"))
            approximate = ann.read_mapped(gen / ann.ANN_FILE) if mapped else None
            chunking = manifest["chunking"]
            spec = ChunkSpec(chunking["target_words"], chunking["max_words"], chunking["overlap_sentences"])
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:  # UnicodeDecodeError is a ValueError
            raise IndexCorrupt(f"index {index_dir} is damaged ({type(exc).__name__}: {str(exc)[:120]}); rebuild it") from None
        if vectors.d != embedder_info.get("dim") or (approximate is not None and approximate.ntotal != vectors.ntotal):
            raise IndexCorrupt(f"index {index_dir} is damaged: vectors have dimension {vectors.d}")
        store = cls(
            embedder_info["name"],
            embedder_info["dim"],
            spec,
            articles,
            chunks,
            vectors,
            manifest.get("created_at"),
            manifest.get("updated_at"),
            signatures,
            signature_params,
            quotes,
            (manifest.get("quotes") or {}).get("extractor_version") if quotes is not None else None,
        )
        store.ann, store.read_only = approximate, mapped
        return store


def batches(articles: Iterable[Article], batch_chars: int = BATCH_CHARS, batch_articles: int = BATCH_ARTICLES) -> Iterator[list[Article]]:
    """The articles in lists of about batch_chars characters of text, or batch_articles articles."""
    batch: list[Article] = []
    size = 0
    for article in articles:
        batch.append(article)
        size += len(article.text)
        if size >= batch_chars or len(batch) >= batch_articles:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# ---- generations: the current one, history, leases, removal --------------------------------------------

def _no_checkpoint(step: str) -> None:
    pass


class _Vanished(Exception):
    """The generation was removed (or is being removed) by a writer before its lease was taken."""


@dataclass(frozen=True)
class GenerationInfo:
    """One generation directory as `qa index history` shows it."""

    name: str
    current: bool
    articles: int | None = None
    chunks: int | None = None
    updated_at: str | None = None
    previous: str | None = None
    problem: str | None = None  # None: complete, every file's sha256 verified

    def to_dict(self) -> dict:
        return {
            "name": self.name, "current": self.current, "articles": self.articles, "chunks": self.chunks,
            "updated_at": self.updated_at, "previous": self.previous, "ok": self.problem is None, "problem": self.problem,
        }


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index directory (readers never wait for it)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise QAError(f"another process is updating the index in {index_dir}; try again when it finishes") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def index_exists(index_dir: Path) -> bool:
    return (Path(index_dir) / "CURRENT").is_file()


def current_generation(index_dir: Path) -> str | None:
    """The generation name CURRENT points at (unvalidated), or None when there is no readable CURRENT."""
    try:
        return (Path(index_dir) / "CURRENT").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def list_generations(index_dir: Path) -> list[str]:
    """Names of the generation directories (complete or not; no temporary ones), oldest first."""
    try:
        names = [p.name for p in Path(index_dir).iterdir() if GENERATION.match(p.name) and p.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(names, key=_generation_order)


def _generation_order(name: str) -> tuple[int, str]:
    try:
        return int(name.split("-")[1], 16), name  # gen-<time_ns hex>-<pid hex>
    except (IndexError, ValueError):
        return 0, name


def _read_current(index_dir: Path) -> str:
    """CURRENT's generation name; a one-line error when there is none or it cannot be read."""
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        if list_generations(index_dir):
            raise IndexCorrupt(
                f"index {index_dir} has generations but no CURRENT file: run `qa index repair` to point it "
                "at the newest complete generation (`qa index history` lists them)"
            ) from None
        raise IndexNotFound(f"no index in {shown_path(index_dir)}: build one with `qa index build PATH...`") from None
    except OSError as exc:
        raise IndexUnreadable(f"cannot read index {index_dir}: {_os_reason(exc)}") from None


@contextmanager
def _lease(gen: Path) -> Iterator[None]:
    """Hold a shared flock on gen/manifest.json while reading gen: remove_old_generations leaves a
    leased generation alone. Raises _Vanished when gen is gone or a writer is removing it."""
    try:
        fd = os.open(gen / "manifest.json", os.O_RDONLY)
    except FileNotFoundError:
        if gen.is_dir():
            raise IndexCorrupt(f"index {gen.parent} is damaged: {gen.name} has no manifest.json; run `qa index repair`") from None
        raise _Vanished from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _Vanished from None  # a writer holds it exclusively: it is being removed
        # The writer may have renamed the directory away between our open and our flock.
        try:
            now = os.stat(gen / "manifest.json")
        except FileNotFoundError:
            raise _Vanished from None
        held = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise _Vanished
        yield
    finally:
        os.close(fd)


def remove_old_generations(index_dir: Path, keep: int = KEEP_GENERATIONS) -> list[str]:
    """Remove every generation except the last `keep` (at least 1) of CURRENT's lineage, and
    leftovers of crashed writers; returns the names removed. The caller holds the write lock.

    A generation a reader is loading (leased) is left for a later write: readers are never hurt
    by a removal, and this write never waits for them. A generation is renamed out of sight
    (to gen-<id>.trash) before it is deleted, so no reader ever opens a half-deleted one.
    """
    index_dir = Path(index_dir)
    kept = set(lineage(index_dir)[: max(1, keep)])
    if not kept:  # no readable CURRENT: nothing can tell what to keep, so nothing goes
        return []
    removed = []
    for path in sorted(index_dir.iterdir()):
        if not path.name.startswith("gen-") or not path.is_dir() or path.name in kept:
            continue
        if path.name.endswith((".tmp", ".trash")):  # a crashed writer's: no other writer runs now
            shutil.rmtree(path, ignore_errors=True)
        elif GENERATION.match(path.name) and _retire(path):
            removed.append(path.name)
    return removed


def _retire(gen: Path) -> bool:
    """Rename gen away and delete it, unless a reader holds its lease (then False)."""
    try:
        fd = os.open(gen / "manifest.json", os.O_RDONLY)
    except FileNotFoundError:
        fd = None  # incomplete: nothing can load it
    except OSError:
        return False
    trash = gen.with_name(gen.name + ".trash")
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        os.rename(gen, trash)  # while holding the lock: a reader now finds it gone, never half-deleted
    finally:
        if fd is not None:
            os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def lineage(index_dir: Path) -> list[str]:
    """CURRENT, the generation it replaced, the one that one replaced… as far as they exist on disk."""
    index_dir = Path(index_dir)
    name, chain = current_generation(index_dir), []
    while name and GENERATION.match(name) and name not in chain and (index_dir / name).is_dir():
        chain.append(name)
        try:
            name = _read_manifest(index_dir / name).get("previous")
        except (QAError, OSError):
            break
    return chain


def generation_info(index_dir: Path, name: str, current: str | None = None) -> GenerationInfo:
    """What a generation holds, with every file's sha256 checked (problem=None when all is well)."""
    gen = Path(index_dir) / name
    base = GenerationInfo(name, name == current)
    try:
        with _lease(gen):
            manifest = _read_manifest(gen)
            counts = manifest.get("counts") or {}
            info = replace(
                base, articles=counts.get("articles"), chunks=counts.get("chunks"),
                updated_at=manifest.get("updated_at"), previous=manifest.get("previous"),
            )
            _verify_files(Path(index_dir), gen, manifest)
            return info
    except _Vanished:
        return replace(base, problem="removed while being read")
    except QAError as exc:
        return replace(base, problem=str(exc))
    except OSError as exc:
        return replace(base, problem=f"cannot read: {_os_reason(exc)}")


def history(index_dir: Path) -> list[GenerationInfo]:
    """Every generation on disk, newest first, checked."""
    current = current_generation(index_dir)
    return [generation_info(index_dir, name, current) for name in reversed(list_generations(index_dir))]


def rollback(index_dir: Path, target: str | None = None, lock_held: bool = False) -> tuple[str | None, str]:
    """Point CURRENT at `target` (default: the generation the current one replaced); returns (old, new).

    The target is loaded and verified first; nothing is removed, so a rollback can be undone
    with `qa index rollback <the old name>`.
    """
    index_dir = Path(index_dir)
    with _writing(index_dir, lock_held):
        old = current_generation(index_dir)
        if target is None:
            target = _default_rollback_target(index_dir, old)
        elif not GENERATION.match(target):
            raise QAError(f"{target[:60]!r} is not a generation name (gen-…); see `qa index history`")
        if target == old:
            raise QAError(f"{target} is already the current generation")
        IndexStore.load(index_dir, generation=target)
        _point_current(index_dir, target)
    return old, target


def _default_rollback_target(index_dir: Path, current: str | None) -> str:
    if current is None or not GENERATION.match(current):
        raise QAError(f"index {index_dir} has no readable CURRENT: run `qa index repair`, or name a generation to roll back to")
    try:
        previous = _read_manifest(index_dir / current).get("previous")
    except (QAError, OSError):
        previous = None
    if previous and GENERATION.match(previous) and (index_dir / previous).is_dir():
        return previous
    older = [n for n in list_generations(index_dir) if _generation_order(n) < _generation_order(current)]
    if not older:
        raise QAError(f"index {index_dir} keeps no generation older than {current}; see `qa index history`")
    return older[-1]


def repair(index_dir: Path, lock_held: bool = False) -> tuple[str | None, str]:
    """Point CURRENT at the newest generation that loads and verifies, unless CURRENT already
    does; returns (old CURRENT, new CURRENT), equal when nothing needed repair."""
    index_dir = Path(index_dir)
    with _writing(index_dir, lock_held):
        old = current_generation(index_dir)
        if old:
            try:
                IndexStore.load(index_dir)
                return old, old
            except IndexLoadError as exc:
                if isinstance(exc, (IndexUnreadable, IndexIncompatible)):
                    raise  # not damage: pointing CURRENT elsewhere would not help
        problems = []
        for name in reversed(list_generations(index_dir)):
            try:
                IndexStore.load(index_dir, generation=name)
            except IndexLoadError as exc:
                problems.append(f"{name}: {exc}")
                continue
            _point_current(index_dir, name)
            return old, name
        raise IndexCorrupt(
            f"index {index_dir} has no complete generation to repair from"
            + (f" ({len(problems)} damaged)" if problems else "")
            + "; rebuild it with `qa index build --replace PATH...`"
        )


def describe_index(index_dir: Path) -> str | None:
    """What `qa index build` would replace: None for an empty or missing folder."""
    index_dir = Path(index_dir)
    name = current_generation(index_dir)
    if name and GENERATION.match(name):
        try:
            counts = _read_manifest(index_dir / name).get("counts") or {}
            return f"an index of {counts.get('articles', '?')} articles ({name})"
        except (QAError, OSError):
            return f"a damaged index ({name})"
    gens = list_generations(index_dir)
    if name is not None or gens:
        return f"{len(gens)} index generation(s) without a readable CURRENT (see `qa index repair`)"
    return None


def _point_current(index_dir: Path, name: str, step: Checkpoint = _no_checkpoint) -> None:
    """Switch CURRENT to `name` atomically and durably: CURRENT.tmp fsynced, renamed, directory fsynced."""
    pointer = index_dir / "CURRENT.tmp"
    with open(pointer, "w", encoding="utf-8") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    step("pointer-written")
    os.replace(pointer, index_dir / "CURRENT")
    step("switched")
    _fsync(index_dir)
    step("switch-synced")


def _writing(index_dir: Path, lock_held: bool):
    return nullcontext() if lock_held else write_lock(index_dir)


def _read_manifest(gen: Path) -> dict:
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"index {gen.parent} is damaged: {gen.name} has no manifest.json") from None
    except ValueError as exc:
        raise IndexCorrupt(f"index {gen.parent} is damaged: unreadable manifest.json ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexCorrupt(f"{gen.parent} does not hold a {FORMAT} index")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index {gen.parent} has format version {manifest.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}; rebuild it with `qa index build`"
        )
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("embedder"), dict):
        raise IndexCorrupt(f"index {gen.parent} is damaged: incomplete manifest.json")
    return manifest


def _verify_files(index_dir: Path, gen: Path, manifest: dict) -> None:
    for file in FILES:
        if file not in manifest["files"] and file not in OPTIONAL_FILES:
            raise IndexCorrupt(f"index {index_dir} is damaged: manifest.json does not list {file}; rebuild it")
    for file, digest in manifest["files"].items():
        path = gen / file
        if file not in FILES or not path.is_file() or _sha256(path) != digest:
            raise IndexCorrupt(f"index {index_dir} is damaged: {file} is missing, truncated or modified; rebuild it")


def _read_signatures(gen: Path, manifest: dict, ids: list[str]) -> tuple[dict[str, np.ndarray] | None, dict | None]:
    """Stored MinHash signatures by article id; (None, None) for an index written without them."""
    params = manifest.get("signatures")
    if not isinstance(params, dict) or "signatures.npy" not in manifest["files"]:
        return None, None
    rows = np.load(gen / "signatures.npy", allow_pickle=False)
    if rows.shape != (len(ids), params.get("num_perm")) or rows.dtype != np.uint32:
        raise ValueError(f"signatures.npy has shape {rows.shape}, expected ({len(ids)}, {params.get('num_perm')})")
    return {article_id: rows[i] for i, article_id in enumerate(ids) if rows[i].any()}, params


def _same_content(a: Article, b: Article) -> bool:
    return (a.title, a.text, a.url, a.published, a.source) == (b.title, b.text, b.url, b.published, b.source)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir_files(directory: Path) -> None:
    for path in directory.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _fsync(directory: Path) -> None:
    """fsync a directory: makes the names created or renamed in it durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_reason(exc: OSError) -> str:
    where = f"{Path(exc.filename).name}: " if exc.filename else ""
    return where + (exc.strerror or type(exc).__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- writing: build, update ---------------------------------------------------------------------------


def build_index(
    articles: Iterable[Article],
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),
    replace: bool = False,
    keep: int = KEEP_GENERATIONS,
    lock_held: bool = False,
    ann_threshold: int = 0,
) -> tuple[IndexStore, UpdateReport]:
    """A fresh index of these articles (near-duplicates collapsed unless dedup=None) in index_dir.

    An index already there is replaced (atomically, and kept as the previous generation for
    `qa index rollback`) only with replace=True; otherwise IndexExists says what is there. No
    article at all is an error too: an empty index never replaces anything. `articles` may be a
    stream: it is read and embedded in batches.
    """
    index_dir = Path(index_dir)
    with _writing(index_dir, lock_held):
        existing = describe_index(index_dir)
        if existing and not replace:
            raise IndexExists(
                f"{index_dir} already holds {existing}; pass --replace to replace it "
                "(`qa index rollback` can bring it back), or use `qa index add`"
            )
        store = IndexStore.new(embedder, spec)
        report = store.add_batches(articles, embedder, progress=progress, dedup=dedup)
        if not store.articles:
            raise QAError("nothing to index: no readable article in the given paths")
        store.save(index_dir, keep, ann_threshold=ann_threshold)
    return store, report


def update_index(
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    add: Iterable[Article] = (),
    remove: Iterable[str] = (),
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),
    keep: int = KEEP_GENERATIONS,
    lock_held: bool = False,
    ann_threshold: int = 0,
) -> tuple[IndexStore, UpdateReport]:
    """Add/replace and remove articles in place; creates the index if there is none yet (and
    something to add). A folder with generations but no readable CURRENT is refused (it needs
    `qa index repair`), never taken for an empty one."""
    index_dir = Path(index_dir)
    with _writing(index_dir, lock_held):
        if index_exists(index_dir) or list_generations(index_dir):
            store = IndexStore.load(index_dir, embedder, writable=True)
            created = False
        else:
            store, created = IndexStore.new(embedder, spec), True
        report = store.remove(remove)
        added = store.add_batches(add, embedder, progress=progress, dedup=dedup)
        report.added, report.updated, report.unchanged, report.chunks_added, report.collapsed = (
            added.added, added.updated, added.unchanged, added.chunks_added, added.collapsed,
        )
        if report.added or report.updated or report.removed or report.collapsed or (created and store.articles):
            store.save(index_dir, keep, ann_threshold=ann_threshold)
    return store, report
