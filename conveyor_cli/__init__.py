"""Conveyor command-line client.

The ``conveyor`` console script (``conveyor_cli.main:app``) talks to the ingest, clean and
audit services over HTTP: it uploads folders of images/videos as dataset assets, browses
datasets and assets, shows quality reports, duplicates and cleaning policies, manages API
keys and inspects or verifies the audit log.
"""

__version__ = "0.1.0"
