"""Labeling-dispatch's use cases, one module per concern."""
