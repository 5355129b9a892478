"""The terminal app: panels side by side, one per model, on top of the engine."""
