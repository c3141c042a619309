"""Data contracts: the API layer. ODCS documents loaded (:mod:`.loader`) into a frozen model
(:mod:`.model`: schema objects, fields, rules as data) that imports nothing above it.

The code that executes a contract (the fused engine, the pandera mapping) lives in
:mod:`streams.validation` and registers itself as a backend (:mod:`.backends`).
"""
