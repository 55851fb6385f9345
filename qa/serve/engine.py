"""Engine: the one QAService shared by the chat UI and the HTTP API.

One lock around retrieval + reading (inference is CPU-bound and the models are not meant to run
many at once on 2 cores), follow-up questions (qa.conversation), and a reload when
`qa index add/remove` switched the index on disk.

Bounded waiting: at most Settings.max_waiting questions wait for the models; one more is
refused at once (Busy, with a Retry-After estimate from recent answer times), and none waits
longer than LOCK_TIMEOUT_S. A new generation that cannot be loaded (damaged, unreadable) is an
error for every question until the index on disk is fixed: the server does not go on answering
from an index the disk no longer holds.

Memory after bursts: the models always run on one worker thread, whatever thread asked (the
API's thread pool has 40). glibc gives each thread that allocates its own heap arena and keeps
their freed pages, so activations spread over many threads stayed resident (1.1-1.7 GB after
bursts of concurrent requests); on one thread they reuse one arena, and when no question is
waiting the free pages are handed back (malloc_trim).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..answer import QAService
from ..config import Settings
from ..errors import InvalidQuestion, QAError
from ..index import store_version
from ..records import Answer
from ..retrieve import Filters

log = logging.getLogger("qa.serve")

LOCK_TIMEOUT_S = 120.0  # a question waiting longer than this for the models gets 503 (busy)


class Busy(QAError):
    """Too many questions are waiting for the models, or one waited LOCK_TIMEOUT_S."""

    def __init__(self, message: str, retry_after: int = 10):
        super().__init__(message)
        self.retry_after = retry_after  # seconds, for the Retry-After header


class Engine:
    def __init__(self, settings: Settings, service: QAService | None = None):
        self.settings = settings
        self._service = service or QAService(settings)
        self._lock = threading.Lock()
        self._generation = store_version(settings)
        self.ready = threading.Event()  # set once the models have answered one question
        self._queue = threading.Lock()  # guards _waiting
        self._waiting = 0  # questions waiting for _lock
        self._answer_s = 1.0  # moving average of the time one question holds the models
        self._failed: str | None = None  # the generation whose load failed last (logged once)
        self._models = ThreadPoolExecutor(1, thread_name_prefix="qa-models")  # every model call, one thread

    @property
    def service(self) -> QAService:
        return self._service

    def load(self) -> None:
        """Load the index now: a missing or damaged index fails before the server starts."""
        store = self._service.store
        if store.generation:
            self._generation = store.generation

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
    ) -> Answer:
        """Answer `question` (a follow-up retrieves with the conversation); one question at a time."""
        question = self._service.validate(question)
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_k:
            raise InvalidQuestion(f"k must be between 1 and {self.settings.max_k}")
        answer = self._run(self._answer, (question, k, filters, history), timeout)
        self.ready.set()
        return answer

    def _run(self, work, args: tuple, timeout: float | None):
        """work(*args) on the models' thread, holding the lock: at most max_waiting callers wait
        (one more is Busy at once), none longer than `timeout` (default LOCK_TIMEOUT_S)."""
        with self._queue:
            if self._waiting >= self.settings.max_waiting and self._lock.locked():
                raise Busy(
                    f"the server is busy: {self._waiting} questions are waiting; try again shortly",
                    retry_after=self._retry_after(),
                )
            self._waiting += 1
        try:
            acquired = self._lock.acquire(timeout=LOCK_TIMEOUT_S if timeout is None else timeout)
        finally:
            with self._queue:
                self._waiting -= 1
        if not acquired:
            raise Busy("the server is busy answering other questions; try again shortly", retry_after=self._retry_after())
        started = time.monotonic()
        try:
            return self._models.submit(self._on_models_thread, work, args).result()
        finally:
            self._answer_s = 0.8 * self._answer_s + 0.2 * (time.monotonic() - started)
            self._lock.release()

    def _on_models_thread(self, work, args: tuple):
        try:
            return work(*args)
        finally:
            if not self._waiting:  # the burst is over: give its free pages back
                from ..models.cpu import release_free_memory

                release_free_memory()

    def _answer(self, question: str, k: int, filters: Filters | None, history: list | None) -> Answer:
        """On the models' thread, holding the lock."""
        return self._reload_if_changed().ask(question, k, filters, history)

    def _quotes(self, speaker: str, about: str | None, filters: Filters | None, limit: int) -> list[dict]:
        """On the models' thread, holding the lock."""
        return [r.to_dict() for r in self._reload_if_changed().speakers.search(speaker, about, filters, limit)]

    def _retry_after(self) -> int:
        """Seconds until the questions now waiting are likely answered (1 to 60)."""
        return max(1, min(60, math.ceil((self._waiting + 1) * self._answer_s)))

    def quotes(self, speaker: str, about: str | None = None, filters: Filters | None = None, limit: int = 10,
               timeout: float | None = None) -> list[dict]:
        """What `speaker` said (qa.speakers.SpeakerAnswerer.search), as JSON rows; queued like a question."""
        return self._run(self._quotes, (speaker, about, filters, limit), timeout)

    def stats(self) -> dict:
        if self._lock.acquire(blocking=False):  # never wait behind a question just for stats
            try:
                self._models.submit(self._reload_if_changed).result()
            finally:
                self._lock.release()
        return self._service.store.stats()

    def _reload_if_changed(self) -> QAService:
        """Pick up a new index generation written by `qa index add/remove` (caller holds the lock).

        A generation that cannot be loaded raises its one-line QAError (the API answers 503) and
        is tried again at the next question, so `qa index repair` or `rollback` heals the server.
        """
        current = self._service
        generation = store_version(self.settings)
        if current._store is not None or generation == self._generation:
            return current
        try:
            fresh = QAService(current.settings, embedder=current.embedder, reader=current.reader)
            store = fresh.store
        except QAError as exc:
            if generation != self._failed:
                log.warning("index changed on disk but cannot be loaded; answering 503 until it can: %s", exc)
                self._failed = generation
            raise
        self._service, self._generation, self._failed = fresh, store.generation, None
        log.info("reloaded index %s (%s)", self.settings.index_dir, store.generation)
        return fresh
