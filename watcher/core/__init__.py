"""The pure core: normalization, the diff and CloudEvent building (no I/O, clock or logging)."""
