"""Store: the on-disk index (FAISS vectors + article/chunk metadata + manifest).

Layout of an index directory (see index/README.md):

    CURRENT            name of the live generation directory (replaced atomically)
    gen-<id>/          one complete, immutable generation
        manifest.json  format, version, embedder, counts, chunking, sha256 of every file
        articles.jsonl one Article per line (with its full text)
        chunks.jsonl   [article_id, start, end] per line, in vector order
        vectors.faiss  FAISS IndexFlatIP of normalized embeddings (row i = chunk i)
        signatures.npy MinHash signature per article (row i = line i of articles.jsonl), for qa.ingest.dedup

Every change writes a new generation in a temporary directory, renames it into place and only
then points CURRENT at it, so a crash or Ctrl-C at any moment leaves the previous index loadable.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..chunk import ChunkSpec, chunk_article
from ..ingest.dedup import DedupSpec, Match, index_against, signatures as dedup_signatures
from ..embed import Embedder, passage_text
from ..ingest.formats import content_id, is_whole_file
from ..errors import IndexCorrupt, IndexIncompatible, IndexNotFound, QAError
from ..records import Alternate, Article, Chunk
from . import ann

FORMAT = "news-qa-index"
FORMAT_VERSION = 1
GENERATION = re.compile(r"^gen-[0-9a-f-]+$")
FILES = ("articles.jsonl", "chunks.jsonl", "vectors.faiss", "signatures.npy", ann.ANN_FILE)
# signatures.npy: absent from indexes written before near-duplicate collapse; vectors.ivf: only
# from Settings.ann_threshold chunks on (qa.index.ann).
OPTIONAL_FILES = ("signatures.npy", ann.ANN_FILE)


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
        # MinHash signatures (qa.ingest.dedup) of the articles long enough to have one, made with signature_params.
        self.signatures: dict[str, np.ndarray] = signatures or {}
        self.signature_params = signature_params if signatures is not None else None
        if self.vectors.ntotal != len(self.chunks):
            raise IndexCorrupt(f"index has {self.vectors.ntotal} vectors but {len(self.chunks)} chunks")
        # Set by load() for a large index (qa.index.ann): the approximate index, and vectors that are
        # memory-mapped read-only, so this store can be searched but not changed.
        self.ann = None
        self.read_only = False

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
        if not (plan.incoming or plan.owners):
            return plan.report
        new_chunks: list[Chunk] = []
        for article in plan.incoming.values():
            new_chunks.extend(chunk_article(article, self.spec, first_id=len(new_chunks)))
        texts = [passage_text(plan.incoming[c.article_id].title, c.text) for c in new_chunks]
        # A batch of only copies changes alternates alone: nothing to embed, no model to load.
        vectors = embedder.encode(texts, progress=progress) if texts else None
        self._apply_update(plan, new_chunks, vectors)
        plan.report.chunks_added = len(new_chunks)
        return plan.report

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
        matches = self._near_duplicates(incoming, plan.signatures, set(plan.report.updated), plan.superseded, dedup)
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

    def _near_duplicates(
        self,
        incoming: dict[str, Article],
        sigs: dict[str, np.ndarray | None],
        updated: set[str],
        superseded: set[str],
        spec: DedupSpec,
    ) -> dict[str, Match]:
        """New incoming articles that copy an indexed article or an earlier kept one in the batch."""
        replaced = (set(incoming) & set(self.articles)) | superseded
        self._ensure_signatures(spec, skip=replaced)

        def text_of(article_id: str) -> str:
            return incoming[article_id].text if article_id in incoming else self.articles[article_id].text

        keys = [k for k in self.signatures if k not in replaced and k in self.articles]
        stored = np.stack([self.signatures[k] for k in keys]) if keys else np.zeros((0, spec.num_perm), np.uint32)
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

    def _ensure_signatures(self, spec: DedupSpec, skip: set[str] = frozenset()) -> None:
        """Signatures for indexed articles lacking one (indexes written before them, or other parameters)."""
        if self.signature_params != spec.signature_params:
            self.signatures, self.signature_params = {}, spec.signature_params
        missing = [a for a in self.articles.values() if a.id not in self.signatures and a.id not in skip]
        for article, sig in zip(missing, dedup_signatures((a.text for a in missing), spec)):
            if sig is not None:
                self.signatures[article.id] = sig

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
            self.updated_at = _now()
        return report

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
        }

    # ---- persistence ---------------------------------------------------------------------

    def save(self, index_dir: Path, before_switch: Callable[[], None] | None = None, ann_threshold: int = 0) -> Path:
        """Write a new generation and switch CURRENT to it atomically; returns its directory.

        From `ann_threshold` chunks on (0: never) the generation also gets an approximate index (qa.index.ann)."""
        import faiss

        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
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
                "files": {f: _sha256(tmp / f) for f in FILES if f not in OPTIONAL_FILES or (tmp / f).exists()},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _fsync_dir_files(tmp)
            if before_switch:
                before_switch()  # test hook: simulate a crash between writing and switching
            os.rename(tmp, index_dir / name)
            pointer = index_dir / "CURRENT.tmp"
            pointer.write_text(name + "\n", encoding="utf-8")
            os.replace(pointer, index_dir / "CURRENT")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _remove_old_generations(index_dir, keep=name)
        return index_dir / name

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder | None = None, writable: bool = False) -> IndexStore:
        """Load and verify the live generation; any problem is a one-line IndexLoadError.

        A generation with an approximate index is memory-mapped for searching unless `writable`."""
        import faiss

        index_dir = Path(index_dir)
        name = current_generation(index_dir)
        if name is None:
            raise IndexNotFound(f"no index in {index_dir}: build one with `qa index build PATH...`")
        gen = index_dir / name
        if not GENERATION.match(name) or not gen.is_dir():
            raise IndexCorrupt(f"index {index_dir} is damaged: CURRENT names a missing generation {name[:60]!r}")
        manifest = _read_manifest(gen)
        embedder_info = manifest.get("embedder") or {}
        if embedder is not None and (embedder_info.get("name") != embedder.name or embedder_info.get("dim") != embedder.dim):
            raise IndexIncompatible(
                f"index {index_dir} was built with embedder {embedder_info.get('name')} "
                f"(dim {embedder_info.get('dim')}), but this service uses {embedder.name} "
                f"(dim {embedder.dim}); rebuild it with `qa index build`"
            )
        for file in FILES:
            if file not in manifest["files"] and file not in OPTIONAL_FILES:
                raise IndexCorrupt(f"index {index_dir} is damaged: manifest.json does not list {file}; rebuild it")
        for file, digest in manifest["files"].items():
            path = gen / file
            if file not in FILES or not path.is_file() or _sha256(path) != digest:
                raise IndexCorrupt(f"index {index_dir} is damaged: {file} is missing, truncated or modified; rebuild it")
        try:
            articles = {}
            with open(gen / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    article = Article.from_dict(json.loads(line))
                    articles[article.id] = article
            signatures, signature_params = _read_signatures(gen, manifest, list(articles))
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
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
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
        )
        store.ann, store.read_only = approximate, mapped
        return store


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index directory (readers never block)."""
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
    """The generation name CURRENT points at (unvalidated), or None when there is no index."""
    try:
        return (Path(index_dir) / "CURRENT").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_manifest(gen: Path) -> dict:
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
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


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    for path in index_dir.iterdir():
        if path.name != keep and path.is_dir() and path.name.startswith("gen-"):
            shutil.rmtree(path, ignore_errors=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_index(
    articles: Iterable[Article],
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),
    ann_threshold: int = 0,
) -> tuple[IndexStore, UpdateReport]:
    """A fresh index of these articles (near-duplicates collapsed unless dedup=None), replacing index_dir atomically."""
    with write_lock(index_dir):
        store = IndexStore.new(embedder, spec)
        report = store.add(articles, embedder, progress=progress, dedup=dedup)
        store.save(index_dir, ann_threshold=ann_threshold)
    return store, report


def update_index(
    index_dir: Path,
    embedder: Embedder,
    spec: ChunkSpec,
    add: Iterable[Article] = (),
    remove: Iterable[str] = (),
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),
    ann_threshold: int = 0,
) -> tuple[IndexStore, UpdateReport]:
    """Add/replace and remove articles in place; creates the index if there is none yet."""
    with write_lock(index_dir):
        store = IndexStore.load(index_dir, embedder, writable=True) if index_exists(index_dir) else IndexStore.new(embedder, spec)
        report = store.remove(remove)
        added = store.add(add, embedder, progress=progress, dedup=dedup)
        report.added, report.updated, report.unchanged, report.chunks_added, report.collapsed = (
            added.added, added.updated, added.unchanged, added.chunks_added, added.collapsed,
        )
        if report.added or report.updated or report.removed or report.collapsed or not index_exists(index_dir):
            store.save(index_dir, ann_threshold=ann_threshold)
    return store, report
