"""Evaluate: SQuAD-style EM/F1 for the reader alone and for the whole service (retrieve → read).

`qa eval reader FILE.jsonl` scores the reader on (question, context) pairs in SQuAD-format JSONL
lines {id, title, context, question, answers: [{text, start}]}. The prediction is the best span
whatever the no-answer score says ("best span per question"), as in the reader's model card.
With --unrelated every question is paired with another example's context instead, and the
score is the share of questions for which the reader says "no answer" (null_rate).

`qa eval e2e --corpus C.jsonl --questions Q.jsonl` indexes the corpus in a temporary directory
and asks every question {id, question, answers: [str], evidence_doc?} through QAService.ask;
a not-found answer is the empty prediction. recall@k is the share of questions with an
evidence_doc whose article is among the top-k retrieved passages.

EM and F1 are percentages (1 decimal), null_rate and recall@k fractions in [0, 1].
"""

from __future__ import annotations

import json
import re
import string
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import QAError
from .records import Article, Chunk, Passage

# ---- SQuAD v1.1 metric (the official evaluate-v1.1.py, plus "" for unanswerable golds) -------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SQUAD_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    """The official SQuAD normalization: lower case, no ASCII punctuation, no articles, single spaces.

    qa.answer.normalize_answer also strips typographic quotes and dashes, which the official
    script keeps ("24–10" stays one token); scores here must be comparable with published ones.
    """
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = squad_normalize(prediction).split()
    gold_tokens = squad_normalize(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)  # SQuAD 2.0 rule: both empty = a match
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, token F1) of one prediction, each the max over the gold answers, in [0, 1].

    No gold answer means "unanswerable": only an empty prediction scores.
    """
    golds = list(golds) or [""]
    em = max(float(squad_normalize(prediction) == squad_normalize(g)) for g in golds)
    f1 = max(_f1(prediction, g) for g in golds)
    return em, f1


# ---- input ---------------------------------------------------------------------------------------


def load_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; any problem is a QAError naming file:line."""
    path = Path(path)
    required = tuple(required)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise QAError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise QAError(f"{path}: is a folder, expected a .jsonl file") from None
    except UnicodeDecodeError as exc:
        raise QAError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise QAError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAError(f"{path}:{n}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise QAError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        missing = [f for f in required if f not in row]
        if missing:
            raise QAError(f"{path}:{n}: missing field {', '.join(repr(f) for f in missing)}")
        row["_origin"] = f"{path}:{n}"
        rows.append(row)
    if not rows:
        raise QAError(f"{path}: no records")
    return rows


def gold_answers(example: dict[str, Any]) -> list[str]:
    """Answer texts of an example: SQuAD dicts {text, start} or plain strings."""
    answers = example.get("answers") or []
    if not isinstance(answers, list):
        raise QAError(f"{_where(example)}: 'answers' must be a list")
    texts = []
    for a in answers:
        text = a.get("text") if isinstance(a, dict) else a
        if not isinstance(text, str):
            raise QAError(f"{_where(example)}: every answer must be a string or an object with a 'text' string")
        texts.append(text)
    return texts


def _where(example: dict[str, Any]) -> str:
    return example.get("_origin") or str(example.get("id", "?"))


def _text_field(example: dict[str, Any], name: str) -> str:
    value = example.get(name)
    if not isinstance(value, str) or not value.strip():
        raise QAError(f"{_where(example)}: '{name}' must be a non-empty string")
    return value


# ---- reader --------------------------------------------------------------------------------------


def context_passage(example: dict[str, Any], context: str | None = None) -> Passage:
    """The example's context (or another one) as the single passage of an article."""
    text = _text_field(example, "context") if context is None else context
    article = Article(id=str(example.get("id", "")), title=str(example.get("title") or ""), text=text)
    chunk = Chunk(id=0, article_id=article.id, text=text, start=0, end=len(text))
    return Passage(chunk=chunk, article=article, score=1.0, rank=0)


def unrelated_partner(question: dict[str, Any], i: int, pool: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The example of `pool` whose context is paired with question number i under --unrelated.

    Deterministic: pool[(i + n//2) % n], moving on past examples with the same context or the
    same (non-empty) title, since those may well hold the answer.
    """
    n = len(pool)
    for step in range(n):
        other = pool[(i + n // 2 + step) % n]
        if other["context"] == question["context"]:
            continue
        if question.get("title") and other.get("title") == question.get("title"):
            continue
        return other
    raise QAError(f"{_where(question)}: no example with an unrelated context (all share its title or context)")


def evaluate_reader(reader, examples: Sequence[dict[str, Any]], unrelated: bool = False,
                    progress: bool = True, pool: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """{"n", "EM", "F1"} (percent), or with unrelated=True {"n", "null_rate"} (fraction).

    Under unrelated=True the contexts come from `pool` (default: the examples themselves), so a
    few questions of one article can still be paired with other articles' paragraphs.
    """
    from tqdm.auto import tqdm

    if not examples:
        raise QAError("no examples to evaluate")
    pool = examples if pool is None else pool
    for ex in examples:
        _text_field(ex, "question")
    for ex in (*examples, *(pool if unrelated else ())):
        _text_field(ex, "context")
    em_sum = f1_sum = 0.0
    nulls = 0
    for i, ex in enumerate(tqdm(examples, desc="reader", unit="q", disable=not progress, file=sys.stderr)):
        if unrelated:
            passage = context_passage(ex, unrelated_partner(ex, i, pool)["context"])
            out = reader.read(ex["question"], [passage])
            nulls += not out.best_is_answer()
            continue
        out = reader.read(ex["question"], [context_passage(ex)])
        prediction = out.spans[0].text if out.spans else ""
        em, f1 = squad_em_f1(prediction, gold_answers(ex))
        em_sum += em
        f1_sum += f1
    n = len(examples)
    if unrelated:
        return {"n": n, "null_rate": round(nulls / n, 3)}
    return {"n": n, "EM": round(100 * em_sum / n, 1), "F1": round(100 * f1_sum / n, 1)}


# ---- end to end ----------------------------------------------------------------------------------


def evaluate_service(service, questions: Sequence[dict[str, Any]], k: int | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """Ask every question through service.ask; EM/F1 (percent) and recall@k (fraction)."""
    from tqdm.auto import tqdm

    if not questions:
        raise QAError("no questions to evaluate")
    k = service.settings.top_k if k is None else k
    em_sum = f1_sum = 0.0
    hits = with_evidence = 0
    for q in tqdm(questions, desc="e2e", unit="q", disable=not progress, file=sys.stderr):
        question = service.validate(_text_field(q, "question"))
        answer = service.ask(question, k=k)
        em, f1 = squad_em_f1(answer.answer if answer.found and answer.answer else "", gold_answers(q))
        em_sum += em
        f1_sum += f1
        evidence = q.get("evidence_doc")
        if evidence not in (None, ""):
            with_evidence += 1
            # A collapsed near-duplicate counts as retrieved when the copy that was kept is.
            retrieved = {
                doc_id
                for p in service.retriever.retrieve(question, k)
                for doc_id in (p.article.id, *(a.id for a in p.article.alternates))
            }
            hits += str(evidence) in retrieved
    n = len(questions)
    return {
        "n": n,
        "EM": round(100 * em_sum / n, 1),
        "F1": round(100 * f1_sum / n, 1),
        "recall@k": round(hits / with_evidence, 3) if with_evidence else None,
        "k": k,
        "n_with_evidence": with_evidence,
    }


def evaluate_e2e(corpus: Sequence[dict[str, Any]], questions: Sequence[dict[str, Any]], settings=None,
                 k: int | None = None, reader=None, embedder=None, progress: bool = True) -> dict[str, Any]:
    """Index the corpus records in a temporary directory, then evaluate_service on the questions.

    A record's "id" becomes its article id, which is what evidence_doc refers to.
    """
    from .answer import QAService
    from .chunk import ChunkSpec
    from .ingest.dedup import DedupSpec
    from .config import Settings
    from .embed import Embedder
    from .ingest import article_from_record
    from .index import build_index

    settings = settings or Settings()
    articles = [article_from_record(r, r.get("_origin", "corpus")) for r in corpus]
    ids = {a.id for a in articles}
    for q in questions:
        evidence = q.get("evidence_doc")
        if evidence not in (None, "") and str(evidence) not in ids:
            raise QAError(f"{_where(q)}: evidence_doc {evidence!r} is not the id of any corpus record")
    embedder = embedder or Embedder.from_settings(settings)
    spec, dedup = ChunkSpec.from_settings(settings), DedupSpec.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        store, _ = build_index(articles, Path(tmp) / "index", embedder, spec, progress=False, dedup=dedup)
        service = QAService(settings.with_(index_dir=Path(tmp) / "index"), store=store, embedder=embedder,
                            reader=reader)
        return evaluate_service(service, questions, k=k, progress=progress)


# ---- speaker questions ---------------------------------------------------------------------------

QUOTE_F1 = 0.6  # a predicted quote matches an accepted one at this token F1 ...
QUOTE_LENGTH = 2.0  # ... or when it contains it and is at most this many times as long


def quote_match(prediction: str, golds: Sequence[str]) -> bool:
    """Does the answer give an accepted quote? No accepted quote means it should be "not found"."""
    if not golds:
        return not prediction
    if not prediction:
        return False
    pred = squad_normalize(prediction)
    for gold in golds:
        norm = squad_normalize(gold)
        if _f1(prediction, gold) >= QUOTE_F1 or (norm and norm in pred and len(pred) <= QUOTE_LENGTH * len(norm)):
            return True
    return False


def evaluate_quotes(service, questions: Sequence[dict[str, Any]], k: int | None = None, progress: bool = True,
                    misses: list | None = None) -> dict[str, Any]:
    """Ask every speaker question {id, question, answers: [accepted quotes], evidence_doc?, history?}
    (history: the earlier questions of a conversation) through service.ask.

    matched: share whose answer matches an accepted quote (quote_match; no accepted quote: the
    answer must be "not found"); F1: mean best token F1 (percent); cites_evidence: share of
    questions with an evidence_doc whose answer cites that article. `misses` collects the misses.
    """
    from tqdm.auto import tqdm

    if not questions:
        raise QAError("no questions to evaluate")
    matched = f1_sum = 0.0
    cited = with_evidence = answerable = matched_answerable = quoted = 0
    for q in tqdm(questions, desc="quotes", unit="q", disable=not progress, file=sys.stderr):
        question = _text_field(q, "question")
        history = q.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise QAError(f"{_where(q)}: 'history' must be a list of earlier questions")
        golds = gold_answers(q)
        answer = service.ask(question, k=k, history=history)
        prediction = answer.answer if answer.found and answer.answer else ""
        hit = quote_match(prediction, golds)
        matched += hit
        f1_sum += squad_em_f1(prediction, golds)[1]
        quoted += answer.quote is not None
        if golds:
            answerable += 1
            matched_answerable += hit
        evidence = q.get("evidence_doc")
        if evidence not in (None, ""):
            with_evidence += 1
            ids = {doc for c in answer.citations
                   for doc in (c.article_id, *(a.id for a in service.store.articles[c.article_id].alternates))}
            cited += str(evidence) in ids
        if not hit and misses is not None:
            misses.append({"id": q.get("id"), "question": question, "answer": prediction, "expected": golds[:1]})
    n = len(questions)
    return {
        "n": n,
        "matched": round(matched / n, 3),
        "F1": round(100 * f1_sum / n, 1),
        "cites_evidence": round(cited / with_evidence, 3) if with_evidence else None,
        "n_with_evidence": with_evidence,
        "matched_answerable": round(matched_answerable / answerable, 3) if answerable else None,
        "n_answerable": answerable,
        "answered_with_quote": round(quoted / n, 3),
    }
