"""Cutting a batch of texts into chunks of similar length, so padding stays small.

On a CPU a forward pass costs about the padded token count, so eight texts of mixed lengths padded to the
longest cost more than eight passes of one: chunks are cut where padding would pass ``max_padding``.
Torch-free: the ONNX runner uses it too.
"""

from __future__ import annotations


def length_chunks(lengths: list[int], batch_size: int, max_padding: float | None = None) -> list[list[int]]:
    """Indices of ``lengths`` sorted by length, in chunks of at most ``batch_size``; with ``max_padding``, a chunk
    also ends where its padded size would exceed ``(1 + max_padding)`` times its real size."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        longest = max(lengths[i], 1)  # sorted: the newcomer is the longest
        fits = len(current) < batch_size and (
            max_padding is None or not current or (len(current) + 1) * longest <= (1 + max_padding) * (real + longest))
        if current and not fits:
            chunks.append(current)
            current, real = [], 0
        current.append(i)
        real += max(lengths[i], 1)
    if current:
        chunks.append(current)
    return chunks
