"""The store interface and the factory that picks a backend from `Settings.store` (QA_STORE).

Two backends hold the same things — articles (with their near-duplicate alternates), chunks with
offsets into the article text, one vector per chunk, what BM25 needs — and answer the same calls:

    ""                      FAISS + files in Settings.index_dir (qa.index.store; the embedded default)
    "milvus://host:port"    a Milvus server over gRPC (qa.index.milvus, extra `.[milvus]`);
    "milvus://host:port/x"  ... with collections named x_* (default "news_qa")
    "path/to/file.db"       a milvus-lite file (same backend, no server)

Every surface (CLI, QAService, the server) goes through `open_store`, `build_store` and
`update_store`, so none of them knows which backend it talks to. The Milvus module is imported
only when QA_STORE names it: the embedded default never imports pymilvus.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ContextManager, Iterable, Mapping, Protocol, runtime_checkable
from urllib.parse import urlsplit

from ..errors import QAError
from ..ingest.dedup import DedupSpec

if TYPE_CHECKING:
    from ..chunk import ChunkSpec
    from ..embed import Embedder
    from ..records import Article
    from .store import UpdateReport

DEFAULT_COLLECTION = "news_qa"


@runtime_checkable
class Store(Protocol):
    """What retrieval, answering and the surfaces need from an index, whatever holds it.

    `articles` maps article id → Article (with its full text and alternates). It is a dict for the
    FAISS backend and a lazy, read-through mapping for Milvus, where `len()` is a count query and
    lookups fetch only the articles asked for.
    """

    embedder_name: str
    dim: int
    spec: ChunkSpec
    articles: Mapping[str, Article]

    def stats(self) -> dict: ...


@dataclass(frozen=True)
class Location:
    """Where the index lives, parsed from QA_STORE (and QA_INDEX_DIR for the files backend)."""

    kind: str  # "files" or "milvus"
    index_dir: Path | None = None  # files
    uri: str | None = None  # milvus: "http://host:port" or a milvus-lite file path
    collection: str = DEFAULT_COLLECTION  # milvus: prefix of the collections' names

    def __str__(self) -> str:
        if self.kind == "files":
            return str(self.index_dir)
        return f"{self.uri} ({self.collection})"


def parse_location(store: str, index_dir: Path) -> Location:
    """QA_STORE → Location; a malformed value is a one-line QAError."""
    value = (store or "").strip()
    if not value:
        return Location("files", index_dir=Path(index_dir))
    if value.startswith("milvus://"):
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise QAError(f"QA_STORE={value[:80]!r}: expected milvus://HOST:PORT[/NAME], e.g. milvus://127.0.0.1:19530")
        name = parts.path.strip("/") or DEFAULT_COLLECTION
        _check_collection_name(name, value)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return Location("milvus", uri=f"http://{host}:{port}", collection=name)
    if value.endswith(".db"):
        return Location("milvus", uri=str(Path(value).resolve()), collection=DEFAULT_COLLECTION)
    raise QAError(
        f"QA_STORE={value[:80]!r} is not a store: leave it unset for the files in QA_INDEX_DIR, "
        "or use milvus://HOST:PORT[/NAME] or a milvus-lite file path ending in .db"
    )


def _check_collection_name(name: str, value: str) -> None:
    # Milvus names: a letter or underscore, then letters, digits, underscores; ours get suffixes.
    if not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name) or len(name) > 60:
        raise QAError(f"QA_STORE={value[:80]!r}: the name after the port must be letters, digits and _ (at most 60)")


def location(settings) -> Location:
    return parse_location(settings.store, settings.index_dir)


def _milvus(loc: Location):
    from .milvus import MilvusBackend  # lazy: imports pymilvus, fails with one line naming the extra

    return MilvusBackend(loc.uri, loc.collection)


def store_exists(settings) -> bool:
    loc = location(settings)
    if loc.kind == "files":
        from .store import index_exists

        return index_exists(loc.index_dir)
    return _milvus(loc).exists()


def open_store(settings, embedder: Embedder | None = None) -> Store:
    """The live index, verified (format version; embedder name and dimension when `embedder` is given)."""
    loc = location(settings)
    if loc.kind == "files":
        from .store import IndexStore

        return IndexStore.load(loc.index_dir, embedder)
    return _milvus(loc).open(embedder)


def store_version(settings) -> str | None:
    """A token that changes with every committed build or update (the Engine reloads on a change).

    For Milvus every question already reads the live generation, so the store object never goes
    stale and this returns a constant.
    """
    loc = location(settings)
    if loc.kind == "files":
        from .store import current_generation

        return current_generation(loc.index_dir)
    return "live"


def writing(settings) -> ContextManager[None]:
    """The writer's lock of the files backend (qa.index.store.write_lock). Milvus has no lock to
    take: one writer at a time is the operator's rule there (docs/scaling.md)."""
    loc = location(settings)
    if loc.kind == "files":
        from .store import write_lock

        return write_lock(loc.index_dir)
    return nullcontext()


def build_store(
    settings,
    articles: Iterable[Article],
    embedder: Embedder,
    spec: ChunkSpec,
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),  # as build_index/update_index: near-duplicates collapsed
    replace: bool = False,
    lock_held: bool = False,
) -> tuple[Store, UpdateReport]:
    """A fresh index of `articles`; an index already there is replaced (atomically: readers see old
    or new, never a mix) only with replace=True, as build_index."""
    loc = location(settings)
    if loc.kind == "files":
        from .store import build_index

        return build_index(articles, loc.index_dir, embedder, spec, progress=progress, dedup=dedup, replace=replace,
                           keep=settings.keep_generations, lock_held=lock_held, ann_threshold=settings.ann_threshold)
    return _milvus(loc).build(articles, embedder, spec, progress=progress, dedup=dedup, replace=replace)


def update_store(
    settings,
    embedder: Embedder,
    spec: ChunkSpec,
    add: Iterable[Article] = (),
    remove: Iterable[str] = (),
    progress: bool = False,
    dedup: DedupSpec | None = DedupSpec(),  # as build_index/update_index: near-duplicates collapsed
    lock_held: bool = False,
) -> tuple[Store, UpdateReport]:
    """Add/replace and remove articles by id; creates the index if there is none yet."""
    loc = location(settings)
    if loc.kind == "files":
        from .store import update_index

        return update_index(loc.index_dir, embedder, spec, add=add, remove=remove, progress=progress, dedup=dedup,
                            keep=settings.keep_generations, lock_held=lock_held, ann_threshold=settings.ann_threshold)
    return _milvus(loc).update(embedder, spec, add=add, remove=remove, progress=progress, dedup=dedup)


def upgrade_store(settings, everything: bool = False) -> tuple[Store, int]:
    """Add what newer versions store (quotes) to an older index without re-embedding; with
    everything=True, every article's quotes are extracted again. Returns the store and how many
    articles were extracted (0: it was up to date). Readers see the old index or the upgraded one."""
    loc = location(settings)
    if loc.kind == "milvus":
        return _milvus(loc).upgrade(everything=everything)
    from ..errors import IndexNotFound
    from ..wording import shown_path
    from .store import IndexStore, index_exists, write_lock

    if not index_exists(loc.index_dir):
        raise IndexNotFound(f"no index in {shown_path(loc.index_dir)}")
    with write_lock(loc.index_dir):
        store = IndexStore.load(loc.index_dir, writable=True)
        extracted = store.refresh_quotes(everything=everything)
        if extracted:
            store.save(loc.index_dir, settings.keep_generations, ann_threshold=settings.ann_threshold)
    return store, extracted


def chunk_count(store: Store) -> int:
    """Chunks in the store (a list for FAISS, a counter in the pointer for Milvus)."""
    count = getattr(store, "chunk_count", None)
    return count if count is not None else len(store.chunks)
