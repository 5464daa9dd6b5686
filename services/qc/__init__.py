"""Quality control of labels: structural checks, consensus, gold scoring, exports."""
