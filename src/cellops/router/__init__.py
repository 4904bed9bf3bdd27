"""The edge in front of the cells: the embedded router, the HAProxy engine, the nginx export."""
