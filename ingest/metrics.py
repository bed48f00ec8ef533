"""Prometheus counters of the ingest, in a registry of their own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class IngestMetrics:
    """Requests by endpoint and outcome; events queued, ignored (by type) and rejected."""

    def __init__(self) -> None:
        # A registry per app, not the global one: tests and benchmarks build several apps.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cmrelay_ingest_requests",
            "Ingest HTTP requests by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.queued = Counter(
            "cmrelay_ingest_events_queued",
            "Events durably queued for the workers.",
            ["endpoint"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "cmrelay_ingest_events_ignored",
            "Events accepted but not queued because the relay does not use their type.",
            ["type"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "cmrelay_ingest_events_rejected",
            "Batch items (or single events) rejected as invalid, by endpoint and reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.queue_length = Gauge(
            "cmrelay_ingest_queue_length",
            "Envelopes waiting on the ingest queue (read at scrape time; -1: Redis unreachable).",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
