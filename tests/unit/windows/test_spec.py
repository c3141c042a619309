"""``qstreams.*`` custom properties: durations, the event-time field, and file:line errors."""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.source import SourceContext, compose
from streams.contracts.stream import DurationError, StreamSpec, parse_duration, parse_stream_spec
from streams.errors import ContractSchemaError

DTYPES = {"event_ts": pl.Datetime("us", "UTC"), "day": pl.Date(), "amount": pl.Float64()}


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1m", 60_000), ("30s", 30_000), ("250ms", 250), ("1.5h", 5_400_000), ("1d", 86_400_000), (90, 90_000),
     ("PT1M30S", 90_000), ("P1D", 86_400_000), ("0s", 0), ("2 min", 120_000), ("1h30m", 5_400_000),
     ("1m 30s", 90_000), ("1s500ms", 1_500)],
)  # fmt: skip
def test_durations(text: object, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "1y", "-5s", "soon", True, "PT", "1m30", "1m-30s", "h1"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)


def spec(yaml_text: str) -> StreamSpec:
    data, lines = compose(yaml_text, "c.yaml")
    return parse_stream_spec(data["customProperties"], ("customProperties",), SourceContext(lines, "c.yaml"), DTYPES)


def test_a_full_spec_and_defaults() -> None:
    s = spec(
        "customProperties:\n"
        "  - {property: qstreams.eventTime, value: event_ts}\n"
        "  - {property: qstreams.window, value: 1m}\n"
        "  - {property: qstreams.allowedLateness, value: 30s}\n"
        "  - {property: qstreams.uniqueWithin, value: 7d}\n"
        "  - {property: other.tool, value: whatever}\n"
    )
    assert s == StreamSpec("event_ts", 60_000, 30_000, 7 * 86_400_000)
    assert StreamSpec().resolve(window_s=60, lateness_s=10, unique_s=86400) == StreamSpec(
        None, 60_000, 10_000, 86_400_000
    )


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  - {property: qstreams.eventTime, value: nope}\n", 3, "not a property"),
        ("  - {property: qstreams.eventTime, value: amount}\n", 3, "not a timestamp"),
        ("  - {property: qstreams.window, value: 1y}\n", 3, "not a duration"),
        ("  - {property: qstreams.window, value: 0s}\n", 3, "longer than 0"),
        ("  - {property: qstreams.windw, value: 1m}\n", 3, "unknown custom property"),
        ("  - {property: qstreams.window, value: 1m}\n  - {property: qstreams.window, value: 2m}\n", 4, "twice"),
    ],
)
def test_errors_name_file_and_line(body: str, line: int, message: str) -> None:
    with pytest.raises(ContractSchemaError, match=message) as info:
        spec("# a contract\ncustomProperties:\n" + body)
    assert info.value.path == "c.yaml" and info.value.line == line
