"""Simulated device firmware: the independent other side of every Courtyard protocol.

Nothing here imports from ``gateway`` or ``devices``. See README.md in this folder.
"""
