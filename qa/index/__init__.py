"""Index (stage 4): the on-disk store of articles, chunks and their vectors, and updating it.

    store   the FAISS + files store: atomic generations, verified loads, add/update/remove,
            history, rollback and repair
    watch   polling feeds into the index
"""

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
]
