"""Index (stage 4): the on-disk store of articles, chunks and their vectors, and updating it.

    store   the FAISS + files store: atomic generations, verified loads, add/update/remove
    watch   polling feeds into the index
"""

from .store import (
    GENERATION,
    IndexStore,
    UpdateReport,
    build_index,
    current_generation,
    index_exists,
    update_index,
    write_lock,
)

__all__ = [
    "GENERATION", "IndexStore", "UpdateReport", "build_index", "current_generation", "index_exists",
    "update_index", "write_lock",
]
