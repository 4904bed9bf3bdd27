"""Kubernetes cells: a namespace (or a whole cluster) per cell."""
