"""Backends make cells real. `base.py` is the port; `local/` runs OS processes."""
