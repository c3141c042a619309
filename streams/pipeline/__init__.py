"""The pure per-batch pipeline: messages in, routed records and quality events out, no I/O.

Layer: above :mod:`streams.formats` and :mod:`streams.validation`, below :mod:`streams.kafka`.

* :mod:`.records` — ``Message``, ``OutRecord``, ``BatchResult`` (not Kafka-specific);
* :mod:`.headers` — the headers we add to produced records;
* :mod:`.binding` — ``Binding``: one schema object bound to its topic, ``process(batch)``;
* :mod:`.verdicts` — the decoder's wrong-typed values merged into the engine's report;
* :mod:`.deadletter` — the one builder of dead-letter records.
"""
