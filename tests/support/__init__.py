"""What the tests share, mirrored by nothing in the source: server launchers (Mosquitto,
influxd, VictoriaMetrics, the gateway as a process), the community-file builder, the rules
harness on a fake clock, a webhook receiver, and the wait helpers. ``bench/`` uses them too."""
