"""The vendor edge: how tasks go out to a kind of vendor and how its results come back."""
