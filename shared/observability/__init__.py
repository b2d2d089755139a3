"""Observability: Prometheus metrics, OpenTelemetry tracing across Kafka hops, JSON logs without PHI."""
