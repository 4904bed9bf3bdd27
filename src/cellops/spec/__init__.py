"""Fleet repo files -> validated model objects, or every problem found.

Pure: works on a `Snapshot` already read by a source; no I/O, clock or environment.
"""
