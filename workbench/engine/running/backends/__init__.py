"""Backends: where a model runs. Each sits behind ``Runner``."""
