"""qa.evaluate: the SQuAD metric, the reader evaluation on real XQuAD data, the e2e evaluation, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.errors import QAError
from qa.cli import eval_group
from qa.evaluate import (
    evaluate_e2e,
    evaluate_reader,
    load_jsonl,
    squad_em_f1,
    squad_normalize,
    unrelated_partner,
)

SHARED = Path(__file__).parents[1].parent / "shared"
XQUAD = SHARED / "data" / "qa" / "eval_xquad_en.jsonl"
needs_xquad = pytest.mark.skipif(not XQUAD.is_file(), reason=f"evaluation data not found: {XQUAD}")


# ---- metric ------------------------------------------------------------------------------------


def test_exact_match():
    assert squad_em_f1("Denver Broncos", ["Denver Broncos"]) == (1.0, 1.0)


def test_partial_overlap_gives_token_f1():
    em, f1 = squad_em_f1("the Denver Broncos team", ["Denver Broncos"])
    assert em == 0.0
    assert f1 == pytest.approx(2 * (2 / 3) * 1.0 / (2 / 3 + 1.0))  # precision 2/3, recall 1


def test_no_overlap():
    assert squad_em_f1("Carolina Panthers", ["Denver Broncos"]) == (0.0, 0.0)


def test_normalization_drops_case_articles_punctuation_and_spaces():
    assert squad_normalize("  The  Broncos, of an era!  ") == "broncos of era"
    assert squad_em_f1("the Broncos.", ["Broncos"]) == (1.0, 1.0)
    assert squad_em_f1("A cat", ["cat"]) == (1.0, 1.0)
    # Official SQuAD keeps non-ASCII punctuation (en dash) inside tokens.
    assert squad_normalize("24–10") == "24–10"


def test_max_over_golds():
    em, f1 = squad_em_f1("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"])
    assert (em, f1) == (1.0, 1.0)
    em, f1 = squad_em_f1("Santa Clara", ["Levi's Stadium", "Santa Clara, California"])
    assert em == 0.0 and f1 == pytest.approx(0.8)


def test_empty_gold_means_unanswerable():
    assert squad_em_f1("", []) == (1.0, 1.0)
    assert squad_em_f1("something", []) == (0.0, 0.0)


# ---- input ---------------------------------------------------------------------------------------


def test_load_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "context": "c", "answers": []}\n\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(QAError, match=r"bad\.jsonl:3: malformed JSON"):
        load_jsonl(path)
    path.write_text('{"question": "q"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(QAError, match=r"bad\.jsonl:2: expected a JSON object"):
        load_jsonl(path)
    with pytest.raises(QAError, match=r"bad\.jsonl:1: missing field 'context'"):
        load_jsonl(path, required=("question", "context"))
    with pytest.raises(QAError, match="no such file"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_cli_reports_malformed_line_as_one_line_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n", encoding="utf-8")
    result = CliRunner().invoke(eval_group, ["reader", str(path), "--json"])
    assert result.exit_code == 1
    assert f"Error: {path}:1: malformed JSON" in result.output
    assert "Traceback" not in result.output


def test_unrelated_partner_skips_same_title_and_context():
    pool = [
        {"title": "A", "context": "a1"},
        {"title": "A", "context": "a2"},
        {"title": "B", "context": "b1"},
        {"title": "", "context": "x"},
    ]
    for i, ex in enumerate(pool):
        other = unrelated_partner(ex, i, pool)
        assert other["context"] != ex["context"]
        assert not ex["title"] or other["title"] != ex["title"]
    with pytest.raises(QAError, match="no example with an unrelated context"):
        unrelated_partner(pool[0], 0, pool[:2])


# ---- reader on real data (the session fixtures `reader` and `embedder` come from conftest.py) ------------


@pytest.fixture(scope="module")
def xquad():
    if not XQUAD.is_file():
        pytest.skip(f"evaluation data not found: {XQUAD}")
    return load_jsonl(XQUAD, required=("question", "context", "answers"))


def test_reader_scores_well_on_xquad_sample(reader, xquad):
    result = evaluate_reader(reader, xquad[:20], progress=False)
    assert result["n"] == 20
    assert set(result) == {"n", "EM", "F1"}
    assert 30.0 < result["F1"] <= 100.0
    assert 0.0 <= result["EM"] <= result["F1"]


def test_reader_says_no_answer_on_unrelated_contexts(reader, xquad):
    result = evaluate_reader(reader, xquad[:20], unrelated=True, progress=False, pool=xquad)
    assert result["n"] == 20
    assert result["null_rate"] >= 0.8


@needs_xquad
def test_cli_reader_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(eval_group, ["reader", str(XQUAD), "--json", "--limit", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) == {"n", "EM", "F1"} and scores["n"] == 5
    result = runner.invoke(eval_group, ["reader", str(XQUAD), "--json", "--limit", "5", "--unrelated", "--quiet"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"n", "null_rate"}
    result = runner.invoke(eval_group, ["reader", str(XQUAD), "--limit", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "F1" in result.stdout and "EM" in result.stdout


# ---- end to end ---------------------------------------------------------------------------------

CORPUS = [
    {"id": "harbor", "title": "Harbor bridge reopens after repairs", "date": "2024-03-02", "source": "Coast Daily",
     "url": "https://coast.example/harbor",
     "text": "The Harbor Bridge in Port Alden reopened on Friday after eight months of repairs. "
             "The city paid 42 million dollars for the work, which was carried out by Keller Construction. "
             "Mayor Ines Varga said traffic on the coastal road should now return to normal."},
    {"id": "orchestra", "title": "Orchestra names new conductor", "date": "2024-04-11", "source": "Arts Weekly",
     "url": "https://arts.example/conductor",
     "text": "The Northfield Symphony Orchestra has named Tomas Rydell as its new principal conductor. "
             "Rydell, who was born in Malmo, will lead his first concert in September. "
             "He replaces Clara Benn, who retired after twenty years with the orchestra."},
    {"id": "harvest", "title": "Apple harvest breaks record", "date": "2024-09-20", "source": "Farm News",
     "url": "https://farm.example/apples",
     "text": "Growers in the Vell Valley picked 3,100 tonnes of apples this season, a record for the region. "
             "A warm spring and late rain were behind the large harvest, the growers' association said."},
]
QUESTIONS = [
    {"id": "q1", "question": "Which company repaired the Harbor Bridge?", "answers": ["Keller Construction"],
     "evidence_doc": "harbor"},
    {"id": "q2", "question": "Who is the new principal conductor of the Northfield Symphony Orchestra?",
     "answers": ["Tomas Rydell"], "evidence_doc": "orchestra"},
    {"id": "q3", "question": "How many tonnes of apples were picked in the Vell Valley?",
     "answers": ["3,100 tonnes", "3,100"], "evidence_doc": "harvest"},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_e2e_on_tiny_corpus(embedder, reader):
    result = evaluate_e2e(CORPUS, QUESTIONS, k=1, reader=reader, embedder=embedder, progress=False)
    assert {"n", "EM", "F1", "recall@k"} <= set(result)
    assert result["n"] == 3 and result["k"] == 1
    assert result["recall@k"] == 1.0
    assert result["F1"] > 50.0


def test_e2e_rejects_unknown_evidence_doc(embedder):
    with pytest.raises(QAError, match="evidence_doc 'nope'"):
        evaluate_e2e(CORPUS, [{"question": "Who?", "answers": ["x"], "evidence_doc": "nope"}], embedder=embedder,
                     progress=False)


def test_cli_e2e_json(tmp_path):
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    questions = _write_jsonl(tmp_path / "questions.jsonl", QUESTIONS[:2])
    result = CliRunner().invoke(
        eval_group, ["e2e", "--corpus", str(corpus), "--questions", str(questions), "--k", "2", "--json", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"n", "EM", "F1", "recall@k"} <= set(scores)
    assert scores["n"] == 2 and scores["recall@k"] == 1.0


def test_quote_match_rules():
    from qa.evaluate import quote_match

    gold = "We have responded to Chairman Kim's letter"
    assert quote_match("We have responded to Chairman Kim's letter – the president has", [gold])  # F1 >= 0.6
    assert quote_match(gold + " and that letter will be delivered shortly, she said", [gold])  # contains, < 2x long
    assert not quote_match(gold + " " + "and many more words follow here " * 4, [gold])  # contains, but too long
    assert not quote_match("He did receive a letter", [gold])
    assert quote_match("", []) and not quote_match("anything", []) and not quote_match("", [gold])
