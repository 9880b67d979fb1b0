"""Runs: their history in `ops.runs` (history.py) and the lock that lets one execute at a time (lock.py)."""
