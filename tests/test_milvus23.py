"""The Milvus store's dense path against a real Milvus server: PyPI's `milvus` 2.3.5 standalone,
run in a private network namespace so it listens on loopback only. Skipped unless `milvus` and
pymilvus are installed and `unshare -n` works (root, as in CI)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="the Milvus backend needs the extra: pip install '.[milvus]'")
pytest.importorskip("milvus", reason="the real-server check needs PyPI's milvus 2.3.5: pip install milvus==2.3.5")


def test_dense_path_on_milvus_2_3():
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -n` (root) to keep the server on a private loopback")
    check = Path(__file__).with_name("milvus23_check.py")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([unshare, "-n", "sh", "-c", f'{ip} link set lo up && exec "$0" "$1"', sys.executable, str(check)],
                          capture_output=True, text=True, timeout=480, cwd=root, env={"PYTHONPATH": str(root),
                          "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sparse"] is False  # 2.3 has no sparse vectors: dense only, recorded in the pointer
    assert result["top"][0] == "bridge" and result["filtered"] == ["storm"]
    assert "55 million" in result["after"][0] and len(result["after"]) == 1
