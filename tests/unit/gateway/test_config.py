from pathlib import Path

import pytest

from gateway.config import ConfigError, load_registry, load_settings


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_without_a_file():
    s = load_settings(None, {})
    assert s.mqtt.url is None
    assert s.mqtt.prefix == "community"
    assert s.influxdb is None
    assert s.api.host_port == ("127.0.0.1", 8080)


def test_file_and_environment_override(tmp_path):
    cfg = write(tmp_path, "c.toml", '[mqtt]\nurl = "mqtt://a:1883"\n[store]\npath = "data/x.db"\n')
    s = load_settings(
        cfg, {"COURTYARD_MQTT_URL": "mqtts://b:8883", "COURTYARD_API_LISTEN": "0.0.0.0:9000"}
    )
    assert s.mqtt.host_port == ("b", 8883)
    assert s.mqtt.tls
    assert s.api.host_port == ("0.0.0.0", 9000)
    # relative paths resolve against the file's folder
    assert s.store.path == str(tmp_path / "data" / "x.db")


def test_platform_keys_from_env_as_toml_or_comma_list():
    s = load_settings(None, {"COURTYARD_AUTH_PLATFORM_KEYS": '["k" ]'.replace("k", "a" * 20)})
    assert [k.key for k in s.auth.platform_keys] == ["a" * 20]
    s = load_settings(None, {"COURTYARD_AUTH_PLATFORM_KEYS": "b" * 16 + "," + "c" * 16})
    assert [k.key for k in s.auth.platform_keys] == ["b" * 16, "c" * 16]


def test_scoped_platform_key(tmp_path):
    cfg = write(
        tmp_path,
        "c.toml",
        '[auth]\nplatform_keys = ["'
        + "x" * 16
        + '", {key = "'
        + "y" * 16
        + '", communities = ["c1"]}]\n',
    )
    keys = load_settings(cfg, {}).auth.platform_keys
    assert keys[0].communities is None
    assert keys[1].communities == ["c1"]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ('[mqtt]\nurl = "http://x"\n', {}, "mqtt.url = 'http://x'"),
        ("[store]\nretention_days = -1\n", {}, "store.retention_days = -1"),
        ("[mqtt]\nprefx = 'a'\n", {}, "mqtt.prefx = 'a': unknown key"),
        ("[api]\nlisten = 'nowhere'\n", {}, "api.listen = 'nowhere'"),
        ('[influxdb]\nurl = "http://i:8086"\napi = "v2"\n', {}, "influxdb.bucket = '': api = 'v2'"),
        ('[influxdb]\napi = "v1"\n', {}, "influxdb.database = '': api = 'v1' needs database"),
        ("[influxdb]\nbucket = 'b'\ntimeout_s = 0\n", {}, "influxdb.timeout_s = 0"),
        ('[influxdb]\napi = "v3"\nbucket="b"\n', {}, "influxdb.api = 'v3'"),
        ("", {"COURTYARD_STORE_COMMIT_MAX_MESSAGES": "lots"}, "store.commit_max_messages = 'lots'"),
        ("[mqtt]\nprefix = 'Bad Prefix'\n", {}, "mqtt.prefix"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, text, env, expected):
    cfg = write(tmp_path, "c.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env)
    assert expected in str(err.value)


def test_secrets_never_appear_in_errors(tmp_path):
    cfg = write(tmp_path, "c.toml", '[mqtt]\npassword = 12345\n[auth]\nplatform_keys = ["short"]\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert "short" not in str(err.value)
    assert "<hidden>" in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "b.toml", "[mqtt\n"), {})


REGISTRY = """
[[communities]]
id = "c1"
[[buildings]]
id = "b3"
community = "c1"
[[devices]]
id = "gate-north"
community = "c1"
class = "access"
secret = "00112233445566778899aabbccddeeff"
expect_every_s = 60
[[devices]]
id = "b3-entrance"
community = "c1"
class = "access"
building = "b3"
"""


def test_registry_loads(tmp_path):
    reg = load_registry(write(tmp_path, "r.toml", REGISTRY))
    devices = reg.by_id()
    assert devices["gate-north"].device_class == "access"
    assert devices["gate-north"].expect_every_s == 60
    assert devices["b3-entrance"].building == "b3"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('class = "access"\nsecret', 'class = "door"\nsecret'), "class"),
        (('secret = "0011', 'secret = "zz11'), "hex string"),
        (('building = "b3"', 'building = "b9"'), "building 'b9'"),
        (('id = "b3-entrance"', 'id = "gate-north"'), "duplicate device id"),
        (('id = "gate-north"', 'id = "Gate North"'), "devices.0.id"),
    ],
)
def test_registry_errors(tmp_path, change, expected):
    text = REGISTRY.replace(*change, 1)
    with pytest.raises(ConfigError) as err:
        load_registry(write(tmp_path, "r.toml", text))
    assert expected in str(err.value)
    assert "0011" not in str(err.value).replace("zz11", "")
