"""Hybrid retrieval: pure rank fusion and the search service."""
