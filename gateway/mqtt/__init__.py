"""MQTT transport: the client (a sans-IO MQTT 5 codec under an asyncio protocol, acking a
batch after its commit), its errors, and the embedded Mosquitto. Nothing here knows what a
device or a topic scheme is: that is :mod:`devices.topics` and the ingest's business."""

from __future__ import annotations

from gateway.mqtt.broker import Broker, BrokerError, EmbeddedBroker, OperatorBroker, free_port
from gateway.mqtt.client import Batch, Message, MqttClient
from gateway.mqtt.codec import Received
from gateway.mqtt.errors import ConnectionRefused, MqttError, MqttTimeout, NotConnected

__all__ = [
    "Batch",
    "Broker",
    "BrokerError",
    "ConnectionRefused",
    "EmbeddedBroker",
    "Message",
    "MqttClient",
    "MqttError",
    "MqttTimeout",
    "NotConnected",
    "OperatorBroker",
    "Received",
    "free_port",
]
