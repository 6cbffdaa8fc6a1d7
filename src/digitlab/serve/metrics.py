"""The server's Prometheus metrics (``GET /metrics``), kept by ``prometheus-client``.

Each application has its own :class:`Metrics` (its own collector registry),
so that several apps in one process (tests) do not mix their counts. Labels
are bounded: the route is the matched route's path template (``/v1/predict``),
or ``unmatched`` for any other path, so a scanner cannot grow the metrics
without bound. With ``--workers N`` each answer is one worker's counts.

==============================================  ==========  ==================================
``digitlab_http_requests_total``                counter     by method, route and status
``digitlab_http_errors_total``                  counter     answers of status >= 400, by status
``digitlab_http_request_duration_seconds``      histogram   by method and route
``digitlab_http_requests_in_progress``          gauge
``digitlab_model_inference_seconds``            histogram   one model call (a micro-batch), by model
``digitlab_model_batch_size``                   histogram   images per model call, by model
==============================================  ==========  ==================================
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

#: Media type of the text exposition format.
CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Request and model metrics of one application."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter("digitlab_http_requests", "HTTP requests answered.", ["method", "route", "status"],
                                 registry=r)
        self._errors = Counter("digitlab_http_errors", "HTTP answers with a status of 400 or more.", ["status"],
                               registry=r)
        self._latency = Histogram("digitlab_http_request_duration_seconds", "Time to answer a request.",
                                  ["method", "route"], buckets=_LATENCY, registry=r)
        self.in_progress = Gauge("digitlab_http_requests_in_progress", "Requests being answered.", registry=r)
        self._inference = Histogram("digitlab_model_inference_seconds", "Time of one model call (a micro-batch).",
                                    ["model"], buckets=_LATENCY, registry=r)
        self._batch = Histogram("digitlab_model_batch_size", "Images per model call.", ["model"], buckets=_BATCH,
                                registry=r)
        # labelled children by key: .labels() takes a lock and builds a tuple each call
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._error_children: dict[int, Counter] = {}
        self._model_children: dict[str, tuple[Histogram, Histogram]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (self._requests.labels(*key), self._latency.labels(method, route))
        child[0].inc()
        child[1].observe(seconds)
        if status >= 400:
            err = self._error_children.get(status)
            if err is None:
                err = self._error_children[status] = self._errors.labels(str(status))
            err.inc()

    def observe_inference(self, model: str, seconds: float, batch: int) -> None:
        """Record one model call of ``batch`` images that took ``seconds``."""
        child = self._model_children.get(model)
        if child is None:
            child = self._model_children[model] = (self._inference.labels(model), self._batch.labels(model))
        child[0].observe(seconds)
        child[1].observe(batch)

    def render(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return bytes(generate_latest(self.registry))
