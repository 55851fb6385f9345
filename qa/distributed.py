"""Distributed embedding for `qa index build --engine ray` (extra `pip install '.[ray]'`).

`RayEmbedder` stands in for an `Embedder` (same name, dimension and `encode`), so every store
backend builds with it unchanged: the store still parses, plans (dedup, updates) and chunks in
this process, which costs milliseconds per article, and the embedding — nearly all of a build's
time — runs on Ray Data actors, one model per actor (`map_batches` with a callable class), each
on one CPU with one torch thread.

Locally, `ray.init(num_cpus=N)` starts a Ray on this machine; with an address (the CLI takes
RAY_ADDRESS, Ray's own variable) the same code runs on a cluster, whose nodes need this package
installed (or a runtime_env that installs it). The work unit is one slice of
`qa.embed.TEXTS_PER_SLICE` texts, exactly the slices the single-process `Embedder.encode` cuts,
so each actor forms the same length-sorted batches with the same padding and the vectors are
bit-for-bit those of a single-process build.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from .embed import TEXTS_PER_SLICE, Embedder, default_model_dir
from .errors import QAError
from .interrupts import raise_if_interrupted

EXTRA = "pip install 'news-qa[ray]'"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - ray without the [data] extra lacks it
    except ImportError:
        raise QAError(f"--engine ray needs Ray Data: {EXTRA}") from None
    return ray


class EmbedActor:
    """One model per Ray actor: loaded once in __init__, then one slice of texts per call."""

    def __init__(self, model_dir: str | None, batch_tokens: int, precision: str):
        import torch

        torch.set_num_threads(1)  # one CPU per actor (num_cpus=1): no oversubscription
        self.embedder = Embedder(Path(model_dir) if model_dir else None, batch_tokens=batch_tokens, precision=precision)

    def __call__(self, batch: dict) -> dict:
        vectors = [self.embedder.encode(list(texts)).astype(np.float32).tobytes() for texts in batch["texts"]]
        return {"slice": batch["slice"], "vectors": np.array(vectors, dtype=object)}


class RayEmbedder:
    """An Embedder whose encode() runs on Ray Data actors (see the module docstring)."""

    def __init__(self, embedder: Embedder, workers: int | None = None, address: str | None = None):
        self.embedder = embedder
        self.workers = workers
        self.address = address or None
        self._started = False

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def _init(self):
        ray = _ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address:
                ray.init(address=self.address, **options)
            else:
                ray.init(num_cpus=self.workers, **options)  # None: every CPU of this machine
            self._started = True
        return ray

    def actors(self, ray) -> int:
        return self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        ray = self._init()
        slices = [{"slice": i, "texts": list(texts[first:first + TEXTS_PER_SLICE])}
                  for i, first in enumerate(range(0, len(texts), TEXTS_PER_SLICE))]
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.execution_options.verbose_progress = False
        if not progress:  # Ray Data logs each execution's start and end at INFO on stderr
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        # The model of the installed package is found by each node itself; a local model directory is passed as is.
        model_dir = None if self.embedder.model_dir == default_model_dir() else str(self.embedder.model_dir)
        dataset = ray.data.from_items(slices, override_num_blocks=len(slices)).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"model_dir": model_dir, "batch_tokens": self.embedder.batch_tokens,
                                   "precision": self.embedder.precision},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(self.actors(ray), len(slices))),
            num_cpus=1,
        )
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for index, data in zip(batch["slice"], batch["vectors"]):
                first = int(index) * TEXTS_PER_SLICE
                block = np.frombuffer(data, dtype=np.float32).reshape(-1, self.dim)
                vectors[first:first + len(block)] = block
                done += len(block)
            raise_if_interrupted()
        if done != len(texts):
            raise QAError(f"Ray returned {done} vectors for {len(texts)} texts")
        return vectors

    def shutdown(self) -> None:
        """Stop the local Ray this embedder started (a cluster keeps running)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

