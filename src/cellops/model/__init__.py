"""Plain data types shared by every layer: problems, snapshots, desired state, changes, plans.

Pure: nothing in this package performs I/O or reads the clock or the environment.
"""
