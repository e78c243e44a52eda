"""The Mesa model of a run: tick phases, agents' wake-ups, random streams, recorder, event log."""

from perpsim.model.events import EVENT_COLUMNS, EventLog, events_frame
from perpsim.model.model import PHASES, PerpModel, TickPhase
from perpsim.model.recorder import Recorder, timeseries_columns

__all__ = [
    "EVENT_COLUMNS",
    "PHASES",
    "EventLog",
    "PerpModel",
    "Recorder",
    "TickPhase",
    "events_frame",
    "timeseries_columns",
]
