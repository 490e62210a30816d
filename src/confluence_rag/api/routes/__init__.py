"""HTTP API route modules."""
