"""Governance downstream of the quality events: what an assessor and an owner read.

* :mod:`streams.governance.archive` — the audit archive: quality events as date/contract-partitioned
  Parquet, idempotent on the event id, resumable after a crash, with retention;
* :mod:`streams.governance.consume` — the Kafka loop that feeds the archive from the event topic;
* :mod:`streams.governance.evidence` — the evidence bundle of a contract (versions, owners, monitoring
  plan, window counts, incident traces) as Markdown plus Parquet;
* :mod:`streams.governance.report` — one self-contained HTML report with inline SVG plots;
* :mod:`streams.governance.lineage` — OpenLineage run events with data-quality facets per window
  (optional extra ``quality-streams[openlineage]``).

Import the submodules; this package imports nothing at import time.
"""

from __future__ import annotations

__all__: list[str] = []
