"""`qa quotes` and `qa eval quotes` on the sample index."""

import json

from click.testing import CliRunner

from qa.cli import cli


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


def test_quotes_json_best_match_first(sample_index):
    data = json.loads(run("quotes", "--speaker", "Ms Sanders", "--about", "a second meeting", "--index", sample_index,
                          "--json").stdout)
    assert data["quotes"][0]["text"].startswith("There is not a second meeting")
    assert data["quotes"][0]["speaker"] == "Sarah Sanders" and data["quotes"][0]["kind"] == "direct"
    assert [q["score"] for q in data["quotes"]] == sorted((q["score"] for q in data["quotes"]), reverse=True)


def test_quotes_human_output_and_filters(sample_index):
    out = run("quotes", "--speaker", "Trump", "--index", sample_index, "--limit", "2").stdout
    assert out.startswith("1. ") and "— Donald Trump, US President" in out and "\n2. " in out
    none = run("quotes", "--speaker", "Trump", "--source", "Nobody", "--index", sample_index).stdout
    assert none.strip() == "No quotes by Trump in the indexed articles."
    bad = run("quotes", "--speaker", "Trump", "--date-from", "yesterday", "--index", sample_index, code=2)
    assert "YYYY-MM-DD" in bad.output


def test_eval_quotes(sample_index, tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "1", "question": "What did Sanders say about a second meeting?",
         "answers": ["There is not a second meeting that is currently locked in or finalized"], "evidence_doc": None},
        {"id": "2", "question": "And what did she say about the letter?", "history": ["What did Sanders say about a second meeting?"],
         "answers": ["We have responded to Chairman Kim’s letter – the president has – and that letter will be delivered shortly"]},
        {"id": "3", "question": "What did Sanders say about the harbour bridge?", "answers": []},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = json.loads(run("eval", "quotes", path, "--index", sample_index, "--json", "--quiet").stdout)
    assert result["n"] == 3 and result["n_answerable"] == 2
    assert result["matched"] == 1.0 and result["answered_with_quote"] == round(2 / 3, 3)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n')
    assert "missing field 'answers'" in run("eval", "quotes", bad, "--index", sample_index, code=1).output
