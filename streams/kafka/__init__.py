"""Kafka I/O only: the worker loop behind a transport seam, the aiokafka transport, topic admin, entry points.

* :mod:`.transport` — the ``Transport`` protocol (consume, produce batch, commit, assignment callbacks);
* :mod:`.aiokafka_transport` — its aiokafka implementation, over :mod:`.session` (the clients);
* :mod:`.connection` — the one connection model: bootstrap and security settings as client arguments;
* :mod:`.topics` — output topic administration;
* :mod:`.batches` — ``BatchWorker``: commit-after-ack, retries, revoke, exactly-once;
* :mod:`.observers` — metrics, health and lifecycle events as worker hooks;
* :mod:`.worker` — ``qstreams worker`` / ``python -m streams.kafka.worker``; :mod:`.app` — the faust app.

The in-memory transport for tests is :class:`streams.testing.transport.InMemoryTransport`.
"""
