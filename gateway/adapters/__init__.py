"""The gateway side of device adapters (CONTRACT.md section 7): which adapters exist, how a
message of one is routed by topic, bound to a device and validated, and the HTTP push."""
