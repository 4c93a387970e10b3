"""A stand-in for the door's queue watch (service/http/overload.py) that refuses every request it may shed, as
under overload, for the tests of what the door's 503 does to a connection."""

from __future__ import annotations

from service.http.overload import QueueWatch


class RefusingWatch(QueueWatch):
    """The door's watch, deciding every inference request is to be refused (as under overload)."""

    def refuse(self, waited_s: float, now: float, in_flight: int, sheddable: bool) -> bool:
        return sheddable
