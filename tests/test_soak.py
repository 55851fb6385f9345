"""The short soak (benchmarks/soak.py): a live server answering while a writer switches generations."""

import json
import subprocess
import sys

from .conftest import ROOT


def test_short_soak_has_no_failed_read():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--seconds", "20", "--askers", "2", "--articles", "30",
         "--rss-every", "2", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, (summary, proc.stderr[-2000:])
    assert summary["errors"] == {} and summary["load_errors"] == {} and summary["write_errors"] == {}
    assert summary["ok"] >= 2 and summary["loads"] >= 10
    assert summary["writes"] >= 4 and summary["generations"] >= 2, "the writer switched generations during the run"
    assert summary["server_alive"] and not summary["traceback_in_server_log"]
