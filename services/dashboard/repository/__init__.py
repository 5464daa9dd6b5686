"""The dashboard's SQL: projection writes (projections) and the page's reads (queries)."""
