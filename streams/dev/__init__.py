"""Development tooling outside the runtime package: a real Kafka broker for the CLI, the demo and tests.

* :mod:`.broker` — ``start_broker``, ``run_dev_broker``, ``bootstrap_from_env``, the ``Broker`` protocol;
* :mod:`.jvm` — ``DevBroker`` (child JVM), :mod:`.container` — ``ContainerBroker`` (testcontainers);
* :mod:`.maven` — Kafka's jars from Maven Central, :mod:`.net` — ports and readiness, :mod:`.config` — broker settings.
"""
