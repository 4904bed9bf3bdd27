"""What the controller shows of itself: Prometheus metrics (`metrics`, `/metrics`), its
log as JSON lines (`logs`), and the store's records gathered for the DORA figures
(`dora`) and the parallel-run scorecard (`legacy`)."""
