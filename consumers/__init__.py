"""Kafka adapters: the wire contract, the ingest consumer, the dead-letter sink and the publisher."""
