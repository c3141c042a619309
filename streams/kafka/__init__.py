"""Kafka integration: a real local Apache Kafka broker for development and tests."""
