"""Index (stage 4): the on-disk store of articles, chunks and their vectors, and updating it.

    base    the store interface and the factory that picks a backend from QA_STORE
    store   the FAISS + files store: atomic generations, verified loads, add/update/remove,
            history, rollback and repair
    ann     past a size threshold: an approximate (IVF) index, memory-mapped
    milvus  the Milvus store (extra .[milvus]; imported only when QA_STORE names it)
    watch   polling feeds into the index
"""

from .base import Store, build_store, open_store, store_exists, store_version, update_store, upgrade_store
from .store import (
    GENERATION,
    KEEP_GENERATIONS,
    GenerationInfo,
    IndexStore,
    UpdateReport,
    build_index,
    current_generation,
    describe_index,
    history,
    index_exists,
    list_generations,
    repair,
    rollback,
    update_index,
    write_lock,
)

__all__ = [
    "GENERATION", "KEEP_GENERATIONS", "GenerationInfo", "IndexStore", "UpdateReport", "build_index",
    "current_generation", "describe_index", "history", "index_exists", "list_generations", "repair", "rollback",
    "update_index", "write_lock",
    "Store", "build_store", "open_store", "store_exists", "store_version", "update_store", "upgrade_store",
]
