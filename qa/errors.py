"""Errors a user can act on. The CLI and app print their message as one line, no traceback."""


class QAError(Exception):
    """Base class for errors caused by input, configuration or on-disk state."""


class IngestError(QAError):
    """An item could not be turned into an article (the message says why)."""


class IndexLoadError(QAError):
    """The on-disk index is missing, corrupt, or was made by another embedder or format version."""


class IndexNotFound(IndexLoadError):
    pass


class IndexIncompatible(IndexLoadError):
    pass


class IndexCorrupt(IndexLoadError):
    pass


class InvalidQuestion(QAError):
    pass


class ModelNotFound(QAError):
    pass


class PrecisionUnavailable(QAError):
    """The requested inference precision (QA_PRECISION) cannot run on this CPU or torch build."""


class IndexUnreadable(IndexLoadError):
    """The index files exist but cannot be read (permissions, I/O error): not damage, no rebuild needed."""


class IndexExists(QAError):
    """`qa index build` would replace an existing index and was not told to (--replace)."""
