import json
import subprocess
import sys
from pathlib import Path

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
    assert list(data) == ["question", "answer", "found", "score", "citations", "alternatives"]
    assert data["question"] == "Where was the summit held?"
    assert data["answer"] == "Singapore" and data["found"] is True
    assert isinstance(data["score"], float) and 0 <= data["score"] <= 1
    [citation, *_] = data["citations"]
    assert list(citation) == [
        "article_id", "title", "url", "date", "source", "passage", "passage_start", "answer_start", "answer_end",
        "alternates",
    ]
    assert citation["alternates"] == []  # the sample has no near-duplicate copies
    assert citation["passage"][citation["answer_start"] : citation["answer_end"]] == "Singapore"
    assert all(isinstance(citation[k], int) for k in ("passage_start", "answer_start", "answer_end"))
    for alt in data["alternatives"]:
        assert list(alt) == ["answer", "score", "article_id"]


def test_ask_not_found_json(sample_index):
    data = json.loads(run("ask", "What is the capital of Peru?", "--index", sample_index, "--json").stdout)
    assert data["found"] is False and data["answer"] is None and data["citations"] == []


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
    result = run("index", "remove", "coast-bridge-delay", "coast-storm", "--index", index_dir, ok=False)
    assert result.exit_code == 3 and "Removed 1; index now 2 articles" in result.stdout

    out = run("index", "stats", "--index", index_dir, "--ids").stdout
    assert "herald-bridge" in out and "coast-storm" not in out and "coast-bridge-delay" not in out


def test_build_reports_skipped_files_indexes_the_rest_and_exits_3(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Mayor resigns\n\nThe mayor resigned on Monday.", encoding="utf-8")
    (folder / "bad.json").write_text("[{", encoding="utf-8")
    result = run("index", "build", folder, "--index", tmp_path / "i", "--quiet", ok=False)
    assert result.exit_code == 3
    assert "Indexed 1 article (0 duplicates merged, 0 near-duplicates collapsed), " in result.stdout
    assert "skipped 1" in result.stdout
    assert "bad.json: malformed JSON" in result.stderr and "1 item skipped" in result.stderr


@pytest.fixture
def mixed_batch(tmp_path, monkeypatch):
    """One good file beside a mistyped path, a .pdf and a .docx, named as a user types them."""
    monkeypatch.chdir(tmp_path)
    Path("good.txt").write_text("Mayor resigns\n\nThe mayor resigned on Monday.", encoding="utf-8")
    Path("report.pdf").write_bytes(b"%PDF-1.4")
    Path("notes.docx").write_bytes(b"PK")
    return ["./good.txt", "./gdoo.txt", "report.pdf", "notes.docx"]


def test_a_typo_in_a_batch_is_exit_3_and_strict_makes_it_an_error(mixed_batch):
    result = run("index", "build", *mixed_batch, "--index", "idx", "--quiet", ok=False)
    assert result.exit_code == 3, "indexed, but not everything named was read"
    assert "skipped ./gdoo.txt: no such file or folder" in result.stderr, "the path as typed"
    assert "skipped report.pdf: unsupported file type .pdf" in result.stderr
    assert "skipped notes.docx: unsupported file type .docx" in result.stderr
    assert "Indexed 1 article " in result.stdout and "skipped 3 → ./idx" in result.stdout

    strict = run("index", "build", *mixed_batch, "--index", "strict-idx", "--strict", "--quiet", ok=False)
    assert strict.exit_code == 1 and "3 items skipped (--strict); the index is unchanged" in strict.stderr
    assert not Path("strict-idx").exists()
    add = run("index", "add", *mixed_batch, "--index", "idx", "--strict", "--quiet", ok=False)
    assert add.exit_code == 1 and "(--strict)" in add.stderr

    # Everything named was read: exit 0, also with --strict.
    assert run("index", "add", "./good.txt", "--index", "idx", "--strict", "--quiet").exit_code == 0
    partial = run("index", "add", "./good.txt", "./gdoo.txt", "--index", "idx", "--quiet", ok=False)
    assert partial.exit_code == 3 and "Added 0, updated 0, unchanged 1" in partial.stdout


def test_add_with_nothing_readable_fails_and_leaves_the_index(index_dir, tmp_path):
    generation = current_generation(index_dir)
    result = run("index", "add", tmp_path / "typo", "--index", index_dir, ok=False)
    assert result.exit_code == 1 and "nothing to add" in result.output
    assert current_generation(index_dir) == generation


def test_messages_name_the_index_as_typed_and_the_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_INDEX_DIR")
    monkeypatch.chdir(tmp_path)
    result = run("ask", "Where?", ok=False)
    assert result.exit_code == 1 and "Error: no index in ./index: build one with `qa index build PATH...`" in result.output
    bad = run("ask", "Where?", "--date-from", "2024-13-01", ok=False)
    assert bad.exit_code == 2 and "Invalid value for '--date-from': '2024-13-01' is not a date as YYYY-MM-DD" in bad.output
    order = run("ask", "Where?", "--date-from", "2024-03-01", "--date-to", "2024-01-01", ok=False)
    assert order.exit_code == 2 and "--date-from 2024-03-01 is after --date-to 2024-01-01" in order.output
    assert "date_from" not in bad.output + order.output


def test_help_texts_are_whole():
    def commands(group, path=()):
        for name, command in group.commands.items():
            yield path + (name,), command
            if hasattr(command, "commands"):
                yield from commands(command, path + (name,))

    pages = [run("--help").stdout] + [run(*path, "--help").stdout for path, _ in commands(cli)]
    assert len(pages) >= 10
    for page in pages:
        text = "\n".join(line for line in page.splitlines() if not line.startswith("Usage:"))
        text = text.replace("PATH...", "")  # `qa index build PATH...`: a metavar, not a cut
        assert "..." not in text and "…" not in text, page
    listing = run("index", "--help").stdout
    assert "build   Build a fresh index from files, folders, feeds and URLs.\n" in listing


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
