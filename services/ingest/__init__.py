"""Ingest: datasets, uploads, object-store drops, assets and API keys."""
