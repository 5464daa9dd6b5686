"""Unit tests of the QC service's pure domain."""
