"""QC's pure logic: shapes in, numbers and findings out; no I/O, no SQL, no async.

Shapes are the canonical annotation dicts of docs/labeling.md (absolute pixels), taken as they
arrive in events so the service needs no conversion layer in front of this package.
"""
