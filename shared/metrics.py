"""Prometheus metrics shared by the plumbing (each service adds its own beside these)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "conveyor_http_requests_total",
    "HTTP requests handled",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "conveyor_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)
EVENTS_CONSUMED = Counter(
    "conveyor_events_consumed_total", "Events handled by consumers", ["group", "type", "outcome"]
)
PARTITIONS_ASSIGNED = Gauge(
    "conveyor_consumer_partitions_assigned",
    "Partitions this process consumes in its group (0 while it waits for a rebalance)",
    ["group"],
)
EVENTS_DEAD_LETTERED = Counter(
    "conveyor_events_dead_lettered_total",
    "Messages sent to the dead-letter topic",
    ["group", "topic"],
)
OUTBOX_PUBLISHED = Counter(
    "conveyor_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
OUTBOX_WAITING = Gauge(
    "conveyor_outbox_waiting",
    "Outbox rows not yet published to Kafka, counted by the relay after its rounds",
    ["schema"],
)
