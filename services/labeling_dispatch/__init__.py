"""Labeling dispatch: ontologies, vendors, jobs and tasks; deliveries out, annotations in."""
