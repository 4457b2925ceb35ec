"""Adapter messages through the ingest, on a real SQLite file without a broker: routed by
topic, bound or discovered, validated like native ones, journaled in the same group commit,
acknowledged after it; ignored topics counted, bad ones dead-lettered with the adapter."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import orjson
import pytest

import gateway.config.registry as registry_module
from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.model import Rejected
from gateway.adapters.binding import AdapterDevices, Bindings, discovered_id, native_payloads
from gateway.adapters.router import FilterError, Route, TopicRouter, build_router
from gateway.config import Registry
from gateway.ingest import Ingest
from gateway.store.journal import Store

NOW = 1_763_700_000_000


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    qos: int = 1
    packet_id: int = 1
    received_at_ms: int = NOW


def _toy_decode(topic: str, payload: bytes, options: Options) -> Adapted:
    """A tiny ecosystem: ``{base}/{name}`` carries a JSON state; ``{base}/bridge/...`` is
    the bridge's own chatter."""
    base = options.get("base", "toy")
    name = topic[len(base) + 1 :]
    if name.startswith("bridge/"):
        return Adapted("toy", "", "access", ignored="bridge_log")
    if name.endswith("/availability"):  # says nothing of the device's class
        state = AdaptedMessage("status", state=payload.decode())
        return Adapted("toy", name.removesuffix("/availability"), "", (state,))
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Rejected("not_json") from None
    if not isinstance(obj, dict):
        raise Rejected("not_object")
    messages = []
    if "contact" in obj:
        messages.append(AdaptedMessage("telemetry", readings={"door_open": not obj["contact"]}))
    if "action" in obj:
        messages.append(
            AdaptedMessage(
                "event",
                event=obj["action"],
                attrs=obj.get("attrs", {}),
                ts_ms=obj.get("ts"),
                seq=obj.get("seq"),
            )
        )
    if obj.get("set"):
        messages.append(AdaptedMessage("command", action="unlock"))
    return Adapted("toy", name, "access", tuple(messages))


TOY = Adapter("toy", "mqtt", _toy_decode, lambda o: (f"{o.get('base', 'toy')}/#",))


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(registry_module, "ADAPTERS", {**registry_module.ADAPTERS, "toy": TOY})
    return Registry.model_validate(
        {
            "devices": [
                {
                    "id": "b3-door",
                    "community": "c1",
                    "class": "access",
                    "adapter": "toy",
                    "source": "Front Door",
                },
            ]
        }
    )


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "c.db"), now_ms=lambda: NOW)
    s.open()
    yield s
    s.close()


class Acks(list[tuple[object, list[int]]]):
    def __call__(self, token: object, ids: list[int]) -> None:
        self.append((token, list(ids)))


def make_ingest(store: Store, registry: Registry, acks: Acks, device_class: str = "") -> Ingest:
    store.register((d.id, d.community, d.device_class, d.building) for d in registry.devices)
    options = {"base": "z2m", **({"device_class": device_class} if device_class else {})}
    router = build_router([(TOY, options, "c1")], native_prefix="community")
    devices = AdapterDevices(store, Bindings(registry.devices), max_payload_bytes=65536)
    return Ingest(
        store,
        prefix="community",
        acker=acks,
        commit_interval_s=0.001,
        router=router,
        adapter_devices=devices,
    )


def journal(store: Store) -> list[tuple[str, str]]:
    return list(
        store.conn.execute(
            "SELECT d.device, j.body FROM journal j JOIN devices d ON d.id = j.device_id"
            " ORDER BY j.id"
        )
    )


async def test_a_bound_source_is_journaled_as_its_device_and_acked_after_the_commit(
    store, toy_registry
):
    acks = Acks()
    ingest = make_ingest(store, toy_registry, acks)
    ingest.on_batch(
        [
            Msg("z2m/Front Door", b'{"contact": false}', packet_id=7),
            Msg(
                "community/c1/access/b3-door/telemetry",
                b'{"locked": true}',
                packet_id=8,
                received_at_ms=NOW + 1,  # same device and kind, no time: one per ms
            ),
        ],
        "conn",
    )
    assert acks == []
    await asyncio.sleep(0.03)
    assert acks == [("conn", [7, 8])]
    assert journal(store) == [("b3-door", '{"door_open":true}'), ("b3-door", '{"locked":true}')]
    assert store.devices["b3-door"].latest["door_open"][0] is True


async def test_an_unbound_source_is_discovered_never_dropped(store, toy_registry):
    ingest = make_ingest(store, toy_registry, Acks())
    ingest.on_batch([Msg("z2m/Garage Side/Door", b'{"contact": true}')], "conn")
    await asyncio.sleep(0.03)
    device = discovered_id("toy", "Garage Side/Door")
    assert journal(store) == [(device, '{"door_open":false}')]
    row = store.conn.execute(
        "SELECT community, class, registered FROM devices WHERE device = ?", (device,)
    ).fetchone()
    assert row == ("c1", "access", 0)
    assert ingest.adapter_devices is not None
    assert ingest.adapter_devices.bindings.discovered[device] == ("toy", "Garage Side/Door")


async def test_a_classless_message_goes_to_a_bound_device_or_the_entrys_class(store, toy_registry):
    ingest = make_ingest(store, toy_registry, Acks())
    ingest.on_batch(
        [
            Msg("z2m/Front Door/availability", b"online"),
            Msg("z2m/Pump Room/availability", b"online"),
        ],
        "conn",
    )
    await asyncio.sleep(0.03)
    assert journal(store) == [("b3-door", '{"state":"online"}')]
    assert store.adapter_dead_letter_counts == {("unclassified", "toy"): 1}
    assert store.devices["b3-door"].online is True


async def test_the_entrys_device_class_places_unbound_classless_devices(store, toy_registry):
    ingest = make_ingest(store, toy_registry, Acks(), device_class="meter")
    ingest.on_batch([Msg("z2m/Pump Room/availability", b"offline")], "conn")
    await asyncio.sleep(0.03)
    device = discovered_id("toy", "Pump Room")
    assert journal(store) == [(device, '{"state":"offline"}')]
    assert store.devices[device].device_class == "meter"


async def test_ignored_topics_are_counted_not_dead_lettered(store, toy_registry):
    acks = Acks()
    ingest = make_ingest(store, toy_registry, acks)
    ingest.on_batch(
        [Msg("z2m/bridge/logging", b"{}", packet_id=1), Msg("z2m/x", b'{"set": 1}', packet_id=2)],
        "conn",
    )
    await asyncio.sleep(0.06)
    assert acks == [("conn", [1, 2])]
    assert journal(store) == []
    assert store.dead_letter_counts == {}
    assert ingest.adapter_ignored == {("toy", "bridge_log"): 1, ("toy", "not_device_message"): 1}


async def test_bad_adapter_output_is_dead_lettered_with_the_adapter_like_a_native_message(
    store, toy_registry
):
    acks = Acks()
    ingest = make_ingest(store, toy_registry, acks)
    ingest.on_batch(
        [
            Msg("z2m/Front Door", b"nope", packet_id=1),
            Msg("z2m/Front Door", b'{"action": "door_exploded"}', packet_id=2),
            Msg(
                "z2m/Front Door",
                b'{"action": "door_unlocked", "attrs": {"method": 3}}',
                packet_id=3,
            ),
        ],
        "conn",
    )
    await asyncio.sleep(0.03)
    assert acks == [("conn", [1, 2, 3])]
    assert journal(store) == []
    assert store.adapter_dead_letter_counts == {
        ("not_json", "toy"): 1,
        ("unknown_event", "toy"): 1,
        ("bad_attribute", "toy"): 1,
    }
    details = [d for (d,) in store.conn.execute("SELECT detail FROM dead_letters ORDER BY id")]
    assert all(d.startswith("[toy]") for d in details), details


async def test_the_adapters_seq_and_time_make_a_repeat_a_duplicate(store, toy_registry):
    ingest = make_ingest(store, toy_registry, Acks())
    body = orjson.dumps({"action": "door_forced", "ts": NOW - 5000, "seq": 261})
    ingest.on_batch([Msg("z2m/Front Door", body)], "conn")
    await asyncio.sleep(0.03)
    ingest.on_batch([Msg("z2m/Front Door", body)], "conn")
    await asyncio.sleep(0.03)
    assert journal(store) == [("b3-door", '{"event":"door_forced"}')]
    assert store.duplicates_total == 1


async def test_submitted_messages_resolve_their_waiter_after_the_commit(store, toy_registry):
    ingest = make_ingest(store, toy_registry, Acks())
    assert ingest.adapter_devices is not None
    adapted = Adapted(
        "toy", "Front Door", "access", (AdaptedMessage("event", event="door_forced"),)
    )
    accepted = ingest.adapter_devices.accept(adapted, "c1", NOW)
    waiter = ingest.submit(accepted, [])
    assert not waiter.done()
    result = await asyncio.wait_for(waiter, 1)
    assert result.inserted == 1
    assert journal(store) == [("b3-door", '{"event":"door_forced"}')]


def test_two_messages_of_one_kind_without_time_or_seq_both_stay() -> None:
    adapted = Adapted(
        "toy",
        "s",
        "access",
        (
            AdaptedMessage("event", event="door_opened"),
            AdaptedMessage("event", event="door_closed"),
        ),
    )
    bodies = [orjson.loads(b) for _, b in native_payloads(adapted)]
    assert bodies == [{"event": "door_opened"}, {"event": "door_closed", "seq": 1}]


@pytest.mark.parametrize(
    "source", ["0x00158e5202e6be17", "Front Door", "front/door", "FRONT DOOR", "x" * 300, "门禁"]
)
def test_discovered_ids_are_valid_ids_and_distinct(source: str) -> None:
    device = discovered_id("zigbee2mqtt", source)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", device), device
    assert device == discovered_id("zigbee2mqtt", source)
    others = {"0x00158e5202e6be17", "Front Door", "front/door", "FRONT DOOR", "front-door"}
    assert sum(discovered_id("zigbee2mqtt", o) == device for o in others) <= 1


def _route(name: str, *filters: str) -> Route:
    return Route(Adapter(name, "mqtt", _toy_decode), {}, "c1", filters)


def test_the_router_picks_exact_then_plus_then_hash() -> None:
    router = TopicRouter(
        [
            _route("a", "zigbee2mqtt/#"),
            _route("b", "tele/+/SENSOR", "tele/+/+"),
            _route("c", "application/+/device/+/event/up"),
            _route("d", "+/status/+", "+/online"),
        ],
        native_prefix="community",
    )
    assert router.match("zigbee2mqtt/Front Door/availability").name == "a"  # type: ignore[union-attr]
    assert router.match("zigbee2mqtt").name == "a"  # type: ignore[union-attr]
    assert router.match("tele/plug-1/SENSOR").name == "b"  # type: ignore[union-attr]
    assert router.match("application/7/device/a8/event/up").name == "c"  # type: ignore[union-attr]
    assert router.match("shellypro3em-1/status/em:0").name == "d"  # type: ignore[union-attr]
    assert router.match("application/7/device/a8/event/join") is None
    assert router.match("tele/plug-1") is None
    assert router.match("$SYS/broker/uptime") is None
    assert router.filters[:2] == ["zigbee2mqtt/#", "tele/+/SENSOR"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("community/#",), "overlaps the native topics"),
        (("#",), "overlaps the native topics"),
        (("+/+/+/+/+",), "overlaps the native topics"),
        (("a/#", "a/#"), "already"),
        (("a/b#",), "malformed"),
        (("a/#/b",), "malformed"),
    ],
)
def test_filters_that_cannot_be_routed_are_refused(filters: tuple[str, ...], expected: str) -> None:
    with pytest.raises(FilterError, match=expected):
        build_router(
            [(Adapter("x", "mqtt", _toy_decode, lambda _o, f=f: (f,)), {}, "c1") for f in filters],
            native_prefix="community",
        )
