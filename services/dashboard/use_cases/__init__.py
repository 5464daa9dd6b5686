"""The dashboard's use cases: projecting events, and reading the projections for the page."""
