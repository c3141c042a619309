"""Stream time: event-time windows, watermarks, mergeable window partials and stream uniqueness.

Pure functions and small frozen dataclasses over polars/numpy; no Kafka here. The
worker's stream-time observers (``streams.kafka``) feed batches in and publish the
partials; whichever worker owns a stream's key merges and finalizes them.

* :mod:`~streams.windows.clock`: event time, tumbling windows, watermarks, finality;
* :mod:`~streams.windows.plan`: how each rule is judged on a window;
* :mod:`~streams.windows.batch`: a validated batch to window partials;
* :mod:`~streams.windows.partial`: partials and their merge;
* :mod:`~streams.windows.sql`: SQL rules decomposed into mergeable aggregates;
* :mod:`~streams.windows.finalize`: a merged partial to the window's verdict;
* :mod:`~streams.windows.codec`: partials and heartbeats on the internal topic;
* :mod:`~streams.windows.hashing` / :mod:`~streams.windows.unique`: stream uniqueness.
"""
