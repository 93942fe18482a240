"""Plain dataclass events the engine emits through an ``on_event`` callback.

The GUI adapts them to Qt signals, the CLI prints them (``--events json``); the engine knows neither.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    def to_json(self) -> str:
        payload = {"event": type(self).__name__, **_jsonable(dataclasses.asdict(self))}
        return json.dumps(payload)


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` units of ``stage`` (``total`` 0 when unknown)."""

    stage: str
    done: int
    total: int
    message: str = ""
    eta_s: float | None = None


@dataclass(frozen=True)
class Metric(Event):
    """Scalars of one training step (loss per meta label and branch, conflict rate, lr, slices/s...)."""

    stage: str
    step: int
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    step: int
    reason: str = "interval"


@dataclass(frozen=True)
class Preview(Event):
    """Predicted label map of some slices (``masks[i]`` is the 2D mask of slice ``slices[i]``)."""

    step: int
    slices: list[int]
    masks: list[Any]  # numpy uint8/uint16 arrays in the volume's in-plane shape


@dataclass(frozen=True)
class Log(Event):
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class Finished(Event):
    stage: str
    status: str  # "completed" | "cancelled" | "failed"
    result: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (Progress, Metric, CheckpointSaved, Preview, Log, Finished)
}


def event_from_json(line: str) -> Event:
    """Inverse of :meth:`Event.to_json` (Preview masks come back as nested lists)."""
    payload = json.loads(line)
    cls = EVENT_TYPES[payload.pop("event")]
    return cls(**payload)


_log = logging.getLogger("gcl_engine.events")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def emit(on_event: EventSink | None, event: Event) -> None:
    """Send ``event`` to the sink; messages, checkpoints and job ends also go to the log (progress does not)."""
    if isinstance(event, Log):
        _log.log(_LEVELS.get(event.level, logging.INFO), event.message)
    elif isinstance(event, Finished | CheckpointSaved):
        _log.info("%s", event)
    if on_event is not None:
        on_event(event)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
