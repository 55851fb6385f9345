"""Engine: the one QAService shared by the chat UI and the HTTP API.

One lock around retrieval + reading (inference is CPU-bound and the models are not meant to run
many at once on 2 cores), follow-up questions (qa.conversation), and a reload when
`qa index add/remove` switched the index on disk.
"""

from __future__ import annotations

import logging
import threading

from ..answer import QAService
from ..config import Settings
from ..errors import InvalidQuestion, QAError
from ..index import current_generation
from ..records import Answer
from ..retrieve import Filters

log = logging.getLogger("qa.serve")

LOCK_TIMEOUT_S = 120.0  # a question waiting longer than this for the models gets 503 (busy)


class Busy(QAError):
    """The models stayed busy with other questions for LOCK_TIMEOUT_S."""


class Engine:
    def __init__(self, settings: Settings, service: QAService | None = None):
        self.settings = settings
        self._service = service or QAService(settings)
        self._lock = threading.Lock()
        self._generation = current_generation(settings.index_dir)
        self.ready = threading.Event()  # set once the models have answered one question

    @property
    def service(self) -> QAService:
        return self._service

    def load(self) -> None:
        """Load the index now: a missing or damaged index fails before the server starts."""
        self._service.store

    def warm_up(self) -> None:
        """Load both models and run them once, so the first user does not wait for it."""
        try:
            self.ask("What is in the news?")
        except Exception:  # noqa: BLE001 - a failed warm-up must not stop the server; asking will report it
            log.exception("warm-up failed")

    def ask(
        self,
        question: str,
        history: list | None = None,
        k: int | None = None,
        filters: Filters | None = None,
        timeout: float | None = None,
        as_of=None,
    ) -> Answer:
        """Answer `question` (a follow-up retrieves with the conversation) as of `as_of` (default now);
        one question at a time."""
        question = self._service.validate(question)
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_k:
            raise InvalidQuestion(f"k must be between 1 and {self.settings.max_k}")
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_S if timeout is None else timeout):
            raise Busy("the server is busy answering other questions; try again shortly")
        try:
            answer = self._reload_if_changed().ask(question, k, filters, history, as_of=as_of)
        finally:
            self._lock.release()
        self.ready.set()
        return answer

    def stats(self) -> dict:
        if self._lock.acquire(blocking=False):  # never wait behind a question just for stats
            try:
                self._reload_if_changed()
            finally:
                self._lock.release()
        return self._service.store.stats()

    def _reload_if_changed(self) -> QAService:
        """Pick up a new index generation written by `qa index add/remove` (caller holds the lock)."""
        current = self._service
        generation = current_generation(self.settings.index_dir)
        if current._store is not None or generation is None or generation == self._generation:
            return current
        try:
            fresh = QAService(current.settings, embedder=current.embedder, reader=current.reader,
                              calibration=current.calibration)
            fresh.store
        except QAError as exc:
            log.warning("index changed on disk but could not be loaded; still serving the previous one: %s", exc)
            return current
        self._service, self._generation = fresh, generation
        log.info("reloaded index %s (%s)", self.settings.index_dir, generation)
        return fresh
