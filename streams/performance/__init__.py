"""Realized model performance: labels joined to predictions by prediction id, per window of prediction time.

:mod:`~streams.performance.binding` reads the labels binding of a prediction contract and decodes
records; :mod:`~streams.performance.joiner` is the join as a pure function of the records (state as
compacted-topic records); :mod:`~streams.performance.merge` spreads it over co-partitioned partition
pairs and merges their window partials; :mod:`~streams.performance.runner` runs it on Kafka (``qstreams performance
run``), exactly once through transactions. See docs/drift.md, "Realized performance".
"""
