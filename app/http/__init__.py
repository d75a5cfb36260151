"""The HTTP API: a thin adapter over the same query functions the command line uses."""
