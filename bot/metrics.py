"""A few counters, gauges read at scrape time and a latency histogram, in the Prometheus text format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HELP = {
    "gridbot_requests_total": "HTTP requests to the WeChat edges by endpoint and status.",
    "gridbot_duplicates_total": "Redelivered inbound messages answered from the stored reply.",
    "gridbot_handler_errors_total": "Inbound messages whose handler raised.",
    "gridbot_messages_handled_total": "Inbound messages handled, by kind.",
    "gridbot_request_seconds": "Time to answer a WeChat push.",
    "gridbot_outbox_total": "Outbox send attempts by result.",
    "gridbot_media_total": "Photo and voice downloads by result (stored, retry, failed).",
    "gridbot_open_orders": "Work orders open now (not resolved, closed or cancelled).",
    "gridbot_overdue_orders": "Open work orders past the deadline of their current phase.",
    "gridbot_outbox_backlog": "Notices waiting in the outbox to be sent.",
    "gridbot_outbox_oldest_seconds": "How long the oldest notice waiting in the outbox has waited.",
    "gridbot_timer_lag_seconds": "How late the timer steps of the last pass that took any were (the most).",
}


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return "{" + inner + "}"


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, float] = {}
        self._buckets = [0] * len(_BUCKETS)
        self._sum = 0.0
        self._count = 0

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counters[name][_labels(labels)] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def gauge(self, name: str, value: float) -> None:
        self._gauges[name] = value

    def observe(self, seconds: float) -> None:
        self._sum += seconds
        self._count += 1
        for index, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                self._buckets[index] += 1

    def render(self, gauges: Mapping[str, float] | None = None) -> str:
        """Everything counted so far, and `gauges` (name → value) measured by the caller just now."""
        lines: list[str] = []
        for name, value in sorted((gauges or {}).items()):
            lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        for name in sorted(self._counters):
            lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} counter"]
            lines += [f"{name}{labels} {value:g}" for labels, value in sorted(self._counters[name].items())]
        for name in sorted(self._gauges):
            lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} gauge"]
            lines.append(f"{name} {self._gauges[name]:g}")
        name = "gridbot_request_seconds"
        lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} histogram"]
        lines += [
            f'{name}_bucket{{le="{bound}"}} {n}' for bound, n in zip(_BUCKETS, self._buckets, strict=True)
        ]
        lines += [
            f'{name}_bucket{{le="+Inf"}} {self._count}',
            f"{name}_sum {self._sum:.6f}",
            f"{name}_count {self._count}",
        ]
        return "\n".join(lines) + "\n"
