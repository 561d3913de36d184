"""Proof of reliability: the crash soak (``python -m watcher.reliability.soak``), which
kills and restarts the real ``watcher run --every S``, and the verdict it shares with
the fault matrix (:mod:`watcher.reliability.verify`). See docs/reliability.md for the
guarantees and the measured figures."""
