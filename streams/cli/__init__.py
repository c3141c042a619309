"""The ``qstreams`` command line (see :mod:`streams.cli.main`)."""
