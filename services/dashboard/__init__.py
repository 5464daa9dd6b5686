"""The dashboard: read-side projections of every ``conveyor.*`` topic, and the ops web UI."""
