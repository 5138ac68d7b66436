"""Retrieval over domain documents: documents -> structured chunks -> a hybrid (BM25 + dense) index."""
