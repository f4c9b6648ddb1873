"""Helpers of bench/harness.py: starting and measuring processes, running the load generator,
and rendering the results. Standard library only, so the harness runs on the system Python."""
