"""Labeling-dispatch's pure logic: no I/O, no SQL, no async."""
