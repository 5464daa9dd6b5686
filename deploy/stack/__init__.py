"""The local stack (Kafka, SeaweedFS, Postgres as local processes); entry point: stack.py."""
