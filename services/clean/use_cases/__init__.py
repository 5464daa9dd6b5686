"""Clean's use cases, one module per concern.

- ``datasets``: the slug projection of ingest's datasets (dataset.created, lookups by slug).
- ``measuring``: reading an asset from the store and checking it (outside any transaction).
- ``cleaning``: asset.ingested in runs: measure, then judge and announce in one unit of work.
- ``policy``: a dataset's policy, read and replaced (which re-judges its stored reports).
- ``reports``: quality report, summary and duplicate groups.
"""
