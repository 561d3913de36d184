"""gainsight-watcher: outbound change triggers for Gainsight."""

__version__ = "0.1.0"
