"""DORA figures and the parallel-run scorecard, computed from what the store records.

Pure: the facts come in as plain data (`facts.py`, gathered from the store by
`cellops.observe.dora`), the figures go out as plain data. No clock, no I/O.
"""
