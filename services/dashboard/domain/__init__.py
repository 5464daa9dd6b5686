"""The dashboard's pure logic: no I/O, unit-tested directly."""
