"""Plumbing every Conveyor service uses: settings, events, Kafka, outbox/inbox, storage, telemetry.

Nothing in this package knows about a particular service's domain.
"""
