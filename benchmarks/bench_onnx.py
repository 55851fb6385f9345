"""ONNX Runtime against our torch path, for the reader and the embedder: one table (issue 18).

    .venv/bin/pip install onnxruntime onnx          # benchmark-only: not dependencies of the project
    HF_HUB_OFFLINE=1 flock /tmp/qa-bench.lock .venv/bin/python benchmarks/bench_onnx.py [--repeats 7]

Exports each shipped model's float32 BertEncoder (qa.models.encoder) to ONNX (opset 17, dynamic
batch and length), quantizes a copy with onnxruntime's dynamic int8 (QInt8 weights), and times a
forward pass of one realistic batch on every path, with the same threads (2):

- reader: 5 windows of 384 tokens (what one question reads at k = 5);
- embedder: 32 passages of 128 tokens (one build batch).

Columns: median ms over --repeats runs and the largest absolute difference of the output from
float32 torch. Resident memory per path is not a column: in one process, loading one model frees
another's pages (RSS differences came out negative). What an ONNX-only process could save is the
import cost of torch against onnxruntime, printed below the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def import_cost(module: str) -> float:
    """Resident MB of a fresh interpreter after importing `module`, minus a bare one."""
    code = "import {m}; print(open('/proc/self/status').read())".format(m=module) if module else \
        "print(open('/proc/self/status').read())"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return next(int(line.split()[1]) / 1024 for line in out.splitlines() if line.startswith("VmRSS:"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa.config import DEFAULT_READER_DIR, Settings
    from qa.embed import Embedder
    from qa.models.cpu import concrete_precision
    from qa.models.encoder import load_encoder, load_model

    torch.set_num_threads(args.threads)
    embedder_dir = Embedder.from_settings(Settings.from_env()).model_dir
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_dir, qa_head, shape in (("reader", DEFAULT_READER_DIR, True, (5, 384)),
                                                ("embedder", embedder_dir, False, (32, 128))):
            ids = torch.randint(1000, 20000, shape)
            mask = torch.ones(shape, dtype=torch.long)
            reference = load_encoder(model_dir, torch.float32, qa_head)

            class Forward(torch.nn.Module):
                def __init__(self, model):
                    super().__init__()
                    self.model = model

                def forward(self, input_ids, attention_mask):
                    out = self.model(input_ids=input_ids, attention_mask=attention_mask)
                    return out.start_logits if qa_head else out.last_hidden_state

            with torch.inference_mode():
                expected = Forward(reference)(ids, mask).float().numpy()
            f32 = Path(tmp) / f"{name}.onnx"
            q8 = Path(tmp) / f"{name}-int8.onnx"
            torch.onnx.export(Forward(reference).eval(), (ids, mask), str(f32), input_names=["input_ids", "attention_mask"],
                              output_names=["out"], opset_version=17, dynamo=False,
                              dynamic_axes={"input_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}})
            quantize_dynamic(str(f32), str(q8), weight_type=QuantType.QInt8)
            feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}

            def session(path):
                options = ort.SessionOptions()
                options.intra_op_num_threads = args.threads
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            paths = {}
            for precision in ("float32", "int8", "auto"):
                model = load_model(model_dir, precision, qa_head)

                def run(model=model):
                    with torch.inference_mode():
                        out = model(input_ids=ids, attention_mask=mask)
                        return (out.start_logits if qa_head else out.last_hidden_state).float().numpy()

                label = f"torch {precision}" + (f" ({concrete_precision('auto')})" if precision == "auto" else "")
                paths[label] = run
            for label, path in (("onnxruntime float32", f32), ("onnxruntime int8", q8)):
                sess = session(path)
                paths[label] = lambda sess=sess: sess.run(None, feed)[0]
            for label, run in paths.items():
                run()
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    out = run()
                    times.append(1000 * (time.perf_counter() - start))
                rows.append((name, f"{shape[0]}×{shape[1]}", label, statistics.median(times),
                             float(np.abs(out - expected).max())))
    print("| model | batch | path | median ms | max abs diff vs float32 |")
    print("|---|---|---|---:|---:|")
    for name, batch, label, ms, diff in rows:
        print(f"| {name} | {batch} | {label} | {ms:.0f} | {diff:.3f} |")
    bare = import_cost("")
    print(f"\nimport cost (RSS of a fresh interpreter): torch {import_cost('torch') - bare:.0f} MB, "
          f"onnxruntime {import_cost('onnxruntime') - bare:.0f} MB")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    print(f"CPU flags: {', '.join(shown)}; {os.cpu_count()} cores; {args.threads} threads")


if __name__ == "__main__":
    main()
