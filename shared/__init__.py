"""The runtime every OsteoCDS service shares: settings, logging, Kafka consumer loop and producer,
dead-letter queue, Redis patient-state store, HTTP health and metrics, and local infrastructure."""
