"""Tenants: where each one lives (placement) and the routing table the router reads.

Pure: no I/O.
"""
