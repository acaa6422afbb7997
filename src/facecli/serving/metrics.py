"""/metrics in Prometheus's text format (prometheus_client): requests by route and status, their latency, the
faces per forward pass, the queries per gallery search, and the gallery's size. Each server process counts its
own requests."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The server's counters, in a registry of its own."""

    def __init__(self, service) -> None:  # noqa: ANN001 - a FaceService
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facecli_requests", "HTTP requests served", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "facecli_request_seconds", "Time to answer a request", ["route", "method"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch = Histogram(
            "facecli_batch_faces", "Faces per forward pass of the model", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.search = Histogram(
            "facecli_search_queries", "Queries per gallery search", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.gallery = Gauge("facecli_gallery_faces", "Faces in the gallery", registry=self.registry)
        service.batcher.on_batch = self.batch.observe
        if service.searcher is not None:
            service.searcher.on_batch = self.search.observe

    def observe(self, route: str, method: str, status: int, start: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(time.perf_counter() - start)

    def render(self) -> bytes:
        if self.service.gallery is not None:
            self.gallery.set(self.service.gallery.count())
        return generate_latest(self.registry)
