"""confluence-rag: a Confluence knowledge base for people and AI assistants."""

__version__ = "0.1.0"
