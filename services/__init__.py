"""Conveyor's services, one package each, one process each."""
