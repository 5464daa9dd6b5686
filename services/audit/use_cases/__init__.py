"""Audit's use cases, one module per concern.

- ``appending``: file every consumed event in the hash chain, a poll at a time.
- ``queries``: search, an asset's timeline, JSON-lines export.
- ``verification``: recompute the chain and name the first record that does not fit.
"""
