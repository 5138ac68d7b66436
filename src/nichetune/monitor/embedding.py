"""Sentence vectors for the drift report's embedding test: the embedded MiniLM, loaded once."""

from __future__ import annotations


def minilm_embedder():
    """``embed(texts) -> (N, 384)`` unit vectors from the embedded MiniLM (mean-pooled, as the server embeds)."""
    from ..infer.classify import sentence_vectors
    from ..models.loading import load_encoder

    model, tokenizer = load_encoder("minilm-l6", device="cpu")
    return lambda texts: sentence_vectors(model, tokenizer, texts, max_length=256, batch_size=32)[0]
