"""Signed webhooks to the property platform: a durable outbox and one deliverer per endpoint."""
