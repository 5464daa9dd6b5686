"""Every SQL statement of labeling-dispatch, one module per aggregate."""
