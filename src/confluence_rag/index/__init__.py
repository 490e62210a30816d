"""Chunking (pure) and embedders (local MiniLM, OpenAI-compatible)."""
