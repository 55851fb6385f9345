import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.index import current_generation

from .conftest import ROOT, SAMPLE_DIR


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def index_dir(tmp_path):
    path = tmp_path / "idx"
    run("index", "build", SAMPLE_DIR, "--index", path, "--quiet")
    return path


def test_ask_json_shape(sample_index):
    result = run("ask", "Where was the summit held?", "--index", sample_index, "--json")
    data = json.loads(result.stdout)
    assert list(data) == ["question", "answer", "found", "score", "citations", "alternatives", "time_window"]
    assert data["question"] == "Where was the summit held?" and data["time_window"] is None
    assert data["answer"] == "Singapore" and data["found"] is True
    assert isinstance(data["score"], float) and 0 <= data["score"] <= 1
    [citation, *_] = data["citations"]
    assert list(citation) == [
        "article_id", "title", "url", "date", "source", "passage", "passage_start", "answer_start", "answer_end",
    ]
    assert citation["passage"][citation["answer_start"] : citation["answer_end"]] == "Singapore"
    assert all(isinstance(citation[k], int) for k in ("passage_start", "answer_start", "answer_end"))
    for alt in data["alternatives"]:
        assert list(alt) == ["answer", "score", "article_id"]


def test_ask_not_found_json(sample_index):
    data = json.loads(run("ask", "What is the capital of Peru?", "--index", sample_index, "--json").stdout)
    assert data["found"] is False and data["answer"] is None and data["citations"] == []


def test_ask_as_of(sample_index):
    week = json.loads(run("ask", "How much will the bridge cost this week?", "--index", sample_index,
                          "--as-of", "2024-03-07", "--json").stdout)
    assert week["time_window"] == {"from": "2024-03-04", "to": "2024-03-07", "reason": "this week"}
    assert week["answer"] == "40 million pounds"
    before = json.loads(run("ask", "How much will the bridge cost?", "--index", sample_index,
                            "--as-of", "2024-01-01", "--json").stdout)
    assert before["time_window"] == {"from": None, "to": "2024-01-01", "reason": "as of 1 January 2024"}
    assert all(c["article_id"] != "herald-bridge" for c in before["citations"])  # published in March 2024
    human = run("ask", "How much will the bridge cost this week?", "--index", sample_index, "--as-of", "2024-03-07").stdout
    assert human.startswith("[articles from 4–7 March 2024 (this week)]")


def test_ask_bad_as_of(sample_index):
    result = CliRunner().invoke(cli, ["ask", "Who?", "--index", str(sample_index), "--as-of", "next Tuesday"])
    assert result.exit_code == 2 and "as-of must be an ISO date" in result.output


def test_ask_human_output_with_filters(sample_index):
    out = run("ask", "How much will the bridge cost?", "--index", sample_index, "--source", "City Herald").stdout
    assert "40 million pounds" in out and "[1] Council approves harbour bridge" in out


def test_build_add_remove_stats(index_dir, news_file, tmp_path):
    stats = json.loads(run("index", "stats", "--index", index_dir, "--json").stdout)
    assert stats["articles"] == 1 and stats["chunks"] >= 3

    out = run("index", "add", news_file, "--index", index_dir, "--quiet").stdout
    assert "Added 3, updated 0, unchanged 0" in out
    out = run("index", "add", news_file, SAMPLE_DIR, "--index", index_dir, "--quiet").stdout
    assert "Added 0, updated 0, unchanged 4" in out

    out = run("index", "remove", "coast-storm", "--index", index_dir).stdout
    assert "Removed 1; index now 3 articles" in out
    result = run("index", "remove", "coast-storm", "--index", index_dir, ok=False)
    assert result.exit_code == 1 and "not in the index: coast-storm" in result.stderr

    out = run("index", "stats", "--index", index_dir, "--ids").stdout
    assert "herald-bridge" in out and "coast-storm" not in out


def test_build_reports_skipped_files_and_indexes_the_rest(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Mayor resigns\n\nThe mayor resigned on Monday.", encoding="utf-8")
    (folder / "bad.json").write_text("[{", encoding="utf-8")
    result = run("index", "build", folder, "--index", tmp_path / "i", "--quiet")
    assert "Indexed 1 articles" in result.stdout and "skipped 1" in result.stdout
    assert "bad.json: malformed JSON" in result.stderr


def test_build_with_nothing_readable_fails(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    result = run("index", "build", tmp_path / "empty.txt", "--index", tmp_path / "i", ok=False)
    assert result.exit_code == 1 and "nothing to index" in result.output


def test_damaged_index_is_one_line_error(index_dir):
    gen = index_dir / current_generation(index_dir)
    (gen / "chunks.jsonl").write_text("garbage")
    result = run("ask", "Where?", "--index", index_dir, ok=False)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "damaged" in result.output
    assert "Traceback" not in result.output


def test_missing_index_message(tmp_path):
    result = run("ask", "Where?", "--index", tmp_path / "none", ok=False)
    assert result.exit_code == 1 and "qa index build" in result.output


def test_empty_question_is_usage_error(sample_index):
    result = run("ask", "  ", "--index", sample_index, ok=False)
    assert result.exit_code == 1 and "empty" in result.output


def test_python_dash_m_entry_point(sample_index):
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "index", "stats", "--index", str(sample_index), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["articles"] == 4
