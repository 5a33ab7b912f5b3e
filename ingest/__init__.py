"""Ingestion: SQS pollers as Ray actors, message decoding, dead-lettering."""
