"""The RS-485 field-bus bridge: one scheduler per serial port, codecs from ``devices.serial``.

Kept import-light (the settings are imported by ``gateway.config``); the bridge itself is in
``gateway.fieldbus.bridge``.
"""
