"""Reading the fleet repo: a Git commit (pygit2) or a working directory -> a `Snapshot`."""
