"""What the server holds at a moment, as ``/metrics`` gauges: its open connections, the bytes of the large
bodies' budget in use (``CTR_BODY_BYTES_IN_FLIGHT``, http/overload.py's ``BodyBudget``) and the bodies
waiting for a share of it. Four connections trickling 4 MiB bodies hold the whole budget until the body
time-out (docs/serving.md): with these an operator sees it, and can alert on it, where only the 503s it
caused showed. Summed over worker processes as the process figures are (process_stats.py)."""

from __future__ import annotations

from collections.abc import Collection

from service.http.overload import BodyBudget

FAMILIES = (
    ("open_connections", "http_open_connections", "Open HTTP connections, idle kept-alive ones included."),
    (
        "body_bytes_in_flight",
        "http_body_bytes_in_flight",
        "Bytes of large request bodies being read, parsed or answered (each worker's of its own "
        "CTR_BODY_BYTES_IN_FLIGHT).",
    ),
    ("bodies_waiting", "http_bodies_waiting", "Large request bodies waiting for a share of CTR_BODY_BYTES_IN_FLIGHT."),
)


class Holdings:
    """One process's holdings; ``connections`` is the protocol's set of open connections once ``ctr serve``
    runs it (none in a test's client, which has no connections)."""

    def __init__(self, body_budget: BodyBudget) -> None:
        self.body_budget = body_budget
        self.connections: Collection | None = None
        self.stopped = False

    def release(self) -> None:
        """Say nothing is held any more: the process stopped (with several workers the others sum its last
        figures until the service exits: a stopped worker's connections were still counted)."""
        self.stopped = True

    def figures(self) -> dict[str, float]:
        if self.stopped:
            return dict.fromkeys((key for key, _, _ in FAMILIES), 0)
        figures = {"body_bytes_in_flight": self.body_budget.used, "bodies_waiting": self.body_budget.waiting}
        if self.connections is not None:
            figures["open_connections"] = len(self.connections)
        return figures


def lines(figures: dict[str, float], prefix: str) -> list[str]:
    """The exposition lines (HELP, TYPE, sample) of each holding in ``figures`` (the processes' figures)."""
    out = []
    for key, name, text in FAMILIES:
        if key in figures:
            family = f"{prefix}_{name}"
            out += [f"# HELP {family} {text}", f"# TYPE {family} gauge", f"{family} {float(figures[key])!r}"]
    return out
