"""The only place that speaks SQL: one contract, SQLite and PostgreSQL implementations."""
