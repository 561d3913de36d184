"""Proof of reliability: the crash soak (``python -m watcher.reliability.soak``) and the
fast-interval daemon entry point it kills and restarts (:mod:`watcher.reliability.fastrun`).
See docs/reliability.md for the guarantees and the measured figures."""
