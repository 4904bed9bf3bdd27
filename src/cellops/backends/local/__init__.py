"""The local backend: each cell is a loopback address, a state folder and an agent process
that owns the cell's replicas (OS processes), probes them and proxies its service ports."""
