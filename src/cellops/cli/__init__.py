"""The `cellops` command."""
