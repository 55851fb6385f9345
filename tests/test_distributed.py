"""`--engine ray` (qa.distributed): Ray Data actors give the single-process vectors bit for bit.
Skipped without the extra `.[ray]`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="--engine ray needs the extra: pip install '.[ray]'")

from click.testing import CliRunner

import qa.distributed
import qa.embed
from qa.cli import cli
from qa.distributed import RayEmbedder
from qa.index import IndexStore

from .conftest import SAMPLE_DIR


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_vectors_equal_single_process(local_ray, embedder, monkeypatch):
    # Small slices so 60 texts make 4 work units over 2 actors (the actors' own slices stay 1,024).
    monkeypatch.setattr(qa.embed, "TEXTS_PER_SLICE", 16)
    monkeypatch.setattr(qa.distributed, "TEXTS_PER_SLICE", 16)
    texts = [f"Report {i}: the council {'debated the harbour bridge ' * (i % 5)}and voted." for i in range(60)]
    ray_embedder = RayEmbedder(embedder, workers=2)
    assert (ray_embedder.name, ray_embedder.dim) == (embedder.name, embedder.dim)
    assert np.array_equal(ray_embedder.encode(texts), embedder.encode(texts))
    assert ray_embedder.encode([]).shape == (0, embedder.dim)


def test_cli_build_with_ray_equals_local_build(local_ray, sample_index, news_file, embedder, tmp_path):
    index_dir = tmp_path / "ray-index"
    result = CliRunner().invoke(cli, ["index", "build", str(SAMPLE_DIR), str(news_file), "--index", str(index_dir),
                                      "--engine", "ray", "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    built, local = IndexStore.load(index_dir, embedder), IndexStore.load(sample_index, embedder)
    assert [(c.article_id, c.start, c.end) for c in built.chunks] == [(c.article_id, c.start, c.end) for c in local.chunks]
    assert np.array_equal(built.vectors.reconstruct_n(0, built.vectors.ntotal),
                          local.vectors.reconstruct_n(0, local.vectors.ntotal))
