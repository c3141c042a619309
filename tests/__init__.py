"""Test suite of quality-streams."""
