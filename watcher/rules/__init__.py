"""Rules: rule-file models, the loader, and the pure matcher (event -> rules -> sinks)."""
