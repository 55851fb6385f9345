"""Models: the transformer encoder both embedder and reader run on, and how it runs on this CPU.

    cpu       inference dtype (bfloat16 where native) and oneDNN fused linear layers
    encoder   loading a model directory: our own BERT forward, or transformers for other architectures
    reader/   the shipped extractive reader (weights, tokenizer, MODEL_CARD.md)
"""
