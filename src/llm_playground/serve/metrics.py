"""Prometheus metrics of one server: requests, tokens, latencies, queue depth (a registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("llmp_requests", "API requests by endpoint, model and HTTP status",
                                ["endpoint", "model", "status"], registry=self.registry)
        self.tokens = Counter("llmp_tokens", "tokens processed, by model and kind (prompt or completion)",
                              ["model", "kind"], registry=self.registry)
        self.latency = Histogram("llmp_request_latency_seconds", "time from request to last byte",
                                 ["endpoint", "model"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("llmp_time_to_first_token_seconds", "time from request to the first token",
                              ["model"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram("llmp_queue_wait_seconds", "time a request waited for its model",
                                    ["model"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("llmp_queue_depth", "requests waiting for or running on a model",
                                 ["model"], registry=self.registry)

    def set_depth(self, model: str, depth: int) -> None:
        self.queue_depth.labels(model).set(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
