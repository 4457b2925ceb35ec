"""Simulated devices of other ecosystems, speaking their vendors' formats (not Courtyard's):
a Zigbee2MQTT bridge, a Tasmota plug, Shelly Pro 3EM and Plus 2PM meters, ChirpStack and The
Things Stack uplinks, a Hikvision access controller and plate cameras that push over HTTP.

Each has its own small encoder written from the vendor's public documents (the sources are
named in each module); nothing here imports from ``gateway`` or ``devices``.
"""
