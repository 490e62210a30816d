"""Fixtures that start a throwaway PostgreSQL + pgvector server (filled in by the Postgres work)."""
