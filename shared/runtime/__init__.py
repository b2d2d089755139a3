"""The service runtime: declarative handlers and the consumer loop, producer, topic creation and dead letters, Redis
patient state, per-patient timers, healing and rebuild, decoding, limits, retries, transport settings, the lag
exporter. Imported by the services' app.py and the benches."""
