"""Ingest's use cases, one module per concern, each over the unit of work.

- ``datasets``: create, get and list datasets (and the cached slug lookup the others use).
- ``registration``: make a new asset and its ``asset.ingested`` event, shared by the three ways in.
- ``uploads``: files uploaded over HTTP.
- ``drops``: objects dropped in the landing bucket (notifications, reconcile, ingestion).
- ``frames``: frames the clean service sampled from a video.
- ``assets``: asset queries (get with a download URL, list, hash lookup).
- ``api_keys``: issue, list and revoke API keys.
- ``principals``: who an API key belongs to.
"""
