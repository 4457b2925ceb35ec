"""Fixtures shared by every test folder: the real-server fixtures are registered here."""

pytest_plugins = ["tests.integration.influx_servers"]
