"""Clean: quality checks, duplicate detection and the per-dataset cleaning policy."""
