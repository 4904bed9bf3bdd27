"""cellops: a control plane for cell-based architecture, driven by GitOps."""

__version__ = "0.1.0"
