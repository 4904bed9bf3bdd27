"""Durable controller state: revisions, the ledger, rollouts, events. `base.py` is the port."""
