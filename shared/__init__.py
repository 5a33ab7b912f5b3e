"""Watchword's shared domain language: models, settings, AWS and LLM adapters."""
