"""Rules on the committed stream: per-device state and timers, alerts, tickets, triggers."""
