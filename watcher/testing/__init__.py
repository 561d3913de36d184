"""Test fakes shipped with the package (in the spirit of ``structlog.testing``):
a simulated Gainsight tenant served over loopback, and local webhook/Slack receivers."""
