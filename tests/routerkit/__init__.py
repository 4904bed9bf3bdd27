"""Real processes for the router tests: toy cells, the embedded router, HAProxy, nginx."""
