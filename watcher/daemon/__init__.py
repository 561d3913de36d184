"""``watcher run``: the scheduler, the HTTP server (health, metrics, feed), sd_notify."""
