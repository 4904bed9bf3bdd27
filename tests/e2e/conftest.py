"""The real-cluster suites share one fleet fixture (two cells, namespaces of their own)."""

from tests.e2e.test_real_cluster import fleet

__all__ = ["fleet"]
