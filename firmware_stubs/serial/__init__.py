"""Simulated RS-485 devices on pseudo-terminals: Modbus meters, a DL/T 645 meter, a lock board.

Like every stub they import nothing from ``gateway/`` or ``devices/``: their encoders are their
own (``wire.py``), so a codec bug cannot hide by sitting on both ends of a test.
"""
