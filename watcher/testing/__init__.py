"""Test fakes shipped with the package (in the spirit of ``structlog.testing``):
a simulated Gainsight tenant served over loopback, local webhook/Slack receivers, and an
in-memory tenant for the poll engine (:mod:`watcher.testing.memory`)."""
