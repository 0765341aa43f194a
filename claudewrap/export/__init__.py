"""Usage to other systems: Prometheus metrics, the exporter, budget alerts and the per-record webhook."""
