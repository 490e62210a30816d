"""Crawl and sync jobs: pipeline, progress, cancel, resume, schedule."""
