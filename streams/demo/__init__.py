"""``qstreams demo`` and the demo producers (see :mod:`streams.demo.run`)."""
