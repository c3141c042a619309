"""Record formats to polars frames: JSON / NDJSON / Arrow message values and CSV / Parquet / NDJSON files.

Layer: above :mod:`streams.validation` (it reads the contract's declared fields), below
:mod:`streams.pipeline`; nothing here knows Kafka. Failures are data: a
:class:`~streams.formats.reasons.DeadLetter` with a :class:`~streams.formats.reasons.DecodeReason`.

* :mod:`.reasons` — ``DecodeReason``, ``Format``, ``DeadLetter``, ``Decoded``;
* :mod:`.content_types` — media types and the ``content-type`` header;
* :mod:`.decoder` — ``Decoder`` (JSON and NDJSON values; :mod:`.bulk` reads the provable JSON
  messages of a batch at once), :mod:`.arrow` (Arrow IPC values),
  :mod:`.columns` (strict wire-dtype columns shared by both);
* :mod:`.files` — local data files (Parquet, CSV/TSV, NDJSON) for the CLI.
"""
