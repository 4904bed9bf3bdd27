"""The controller: the rollout step machine, the reconcile pipeline and the loop."""
