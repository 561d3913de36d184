"""Delivery: the dispatcher, the sinks (webhook, slack, command, python), signing, rendering."""
