"""Consumers of the quality-event topic: tail it, and aggregate what it says.

These are the building blocks of the live view, the demo's incident summary and,
later, response policies (page / quarantine / retrain / rollback).
"""

from streams.consumers.tracker import EventTracker, Signal

__all__ = ["EventTracker", "Signal"]
