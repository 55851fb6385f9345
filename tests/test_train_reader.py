"""scripts/train_reader.py end to end on CPU: a tiny run that the service's Reader can load and use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.config import DEFAULT_READER_DIR
from qa.read import Reader
from qa.records import Article, Chunk, Passage

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "scripts" / "train_reader.py"
DATA = REPO.parent / "shared" / "data" / "qa"
TRAIN = DATA / "train_squaddev_minus_xquad.jsonl"
XQUAD = DATA / "eval_xquad_en.jsonl"

pytestmark = pytest.mark.skipif(
    not (TRAIN.is_file() and XQUAD.is_file()), reason=f"training/evaluation data not found in {DATA}"
)


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_tiny_training_run_gives_a_loadable_float16_reader(tmp_path):
    from safetensors import safe_open

    eval_file = tmp_path / "eval.jsonl"
    lines = XQUAD.read_text(encoding="utf-8").splitlines()
    eval_file.write_text("\n".join(lines[:3] + lines[-3:]) + "\n", encoding="utf-8")  # two titles
    out = tmp_path / "reader"
    result = _run(
        "--train", str(TRAIN), "--init", str(DEFAULT_READER_DIR), "--max-examples", "16", "--epochs", "1",
        "--batch-size", "8", "--device", "cpu", "--eval", str(eval_file), "--output", str(out), "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 1/1: mean loss" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["eval"][0]["n"] == 6 and "null_rate" in summary["eval"][0]

    weights = out / "model.safetensors"
    assert weights.is_file()
    with safe_open(str(weights), framework="pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert dtypes == {"F16"}
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "--max-examples 16" in card and "| EM | F1 |" in card and "eval.jsonl" in card

    reader = Reader(out, precision="float32")  # float16 on disk, float32 in memory
    text = "The Harbor Bridge in Port Alden reopened on Friday after repairs by Keller Construction."
    article = Article(id="a", title="Bridge", text=text)
    passage = Passage(Chunk(0, "a", text, 0, len(text)), article, 1.0, 0)
    output = reader.read("Which company repaired the Harbor Bridge?", [passage])
    assert output.spans and 0.0 <= output.spans[0].score <= 1.0
    assert str(next(reader.model.parameters()).dtype) == "torch.float32"


def test_refuses_to_train_on_evaluation_data(tmp_path):
    result = _run("--train", str(XQUAD), "--eval", str(XQUAD), "--output", str(tmp_path / "r"), timeout=120)
    assert result.returncode != 0
    assert "evaluation data must never be trained on" in result.stderr
    assert not (tmp_path / "r").exists()
