"""The gateway's settings: one typed object, read from a TOML file and
``COURTYARD_<SECTION>_<KEY>`` variables. Relative paths in a file resolve against the file's
own folder."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config.base import (
    ENV_PREFIX,
    ConfigError,
    DeviceClass,
    Ident,
    Section,
    format_error,
)
from gateway.fieldbus.settings import SerialBus, check_unique, resolve_map_files


class MqttSettings(Section):
    url: str | None = None  # None: the gateway starts its own Mosquitto
    client_id: str = "courtyard"
    username: str = ""
    password: str = Field(default="", repr=False)
    prefix: Ident = "community"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(default=7 * 86400, ge=0)
    read_coalesce_ms: float = Field(default=2.0, ge=0, le=50)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        return v

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url or "")
        default = 8883 if parts.scheme == "mqtts" else 1883
        return parts.hostname or "127.0.0.1", parts.port or default

    @property
    def tls(self) -> bool:
        return (self.url or "").startswith("mqtts://")


class StoreSettings(Section):
    path: str = "courtyard.db"
    retention_days: float = Field(default=90, gt=0)
    commit_interval_ms: float = Field(default=5, ge=0, le=1000)
    telemetry_commit_interval_ms: float = Field(default=50, ge=0, le=1000)
    commit_max_messages: int = Field(default=5000, ge=1, le=100_000)
    max_payload_bytes: int = Field(default=65536, ge=256, le=16 * 1024 * 1024)
    # "full": nothing is acknowledged (PUBACK, ingest 200, a command sent) before its commit is
    # synced; "normal" is the operator's explicit choice to risk the last commits to a power cut.
    durability: Literal["full", "normal"] = "full"
    # the disk quota (docs/configuration.md, "Disk quota"): 0 turns each limit off
    max_bytes: int = Field(default=0, ge=0)
    min_free_bytes: int = Field(default=64 * 2**20, ge=0)
    downsample_every_s: float = Field(default=300, gt=0, le=86400)
    # at start-up: "integrity" (PRAGMA integrity_check), "quick" (quick_check), or "off"
    startup_check: Literal["integrity", "quick", "off"] = "quick"


class InfluxSettings(Section):
    """``[influxdb]``: where and how the sink writes. The one model for the configuration and
    the sink, which receives it pickled when it runs in a process of its own."""

    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v2"
    token: str = Field(default="", repr=False)
    org: str = ""
    # validated even when left out (validate_default): which of the two is needed depends on api
    bucket: str = Field(default="", validate_default=True)
    database: str = Field(default="", validate_default=True)
    username: str = ""
    password: str = Field(default="", repr=False)
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    timeout_s: float = Field(default=10, gt=0)
    verify_tls: bool = True
    # run the sink in a process of its own (it shares no interpreter lock with the ingest)
    own_process: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("expected http://HOST:PORT or https://HOST:PORT")
        return v.rstrip("/")

    # field validators, not a model validator: the error's location is the key to fix
    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("api") == "v2" and not v:
            raise ValueError("api = 'v2' needs bucket (and org, token)")
        return v

    @field_validator("database")
    @classmethod
    def _database(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("api") == "v1" and not v:
            raise ValueError("api = 'v1' needs database")
        return v


class ApiSettings(Section):
    listen: str = "127.0.0.1:8080"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8080")
        return v

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


Scope = Literal["read", "metrics", "write", "command"]


class PlatformKey(Section):
    key: str = Field(min_length=16, repr=False)
    communities: list[Ident] | None = None  # None: every community
    # None: read, write and command (as before scopes existed), and /metrics only for a key
    # of every community; a list: exactly those (docs/security.md)
    scopes: list[Scope] | None = None


# RFC 7518 section 3.2: an HMAC key at least as long as the hash's output
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "EdDSA"]


class AuthSettings(Section):
    jwt_secret: str = Field(default="", repr=False)
    jwt_public_key_file: str = ""
    # fixed by configuration, never taken from a token; empty: HS256 with jwt_secret, else
    # the algorithm of the public key (RS256 for RSA, ES256 for P-256, EdDSA for Ed25519)
    jwt_algorithm: JwtAlgorithm | None = None
    jwt_leeway_s: float = Field(default=30, ge=0, le=300)
    # required with resident tokens: a token must name this gateway's audience and issuer
    # (a token the same issuer made for another service is refused)
    jwt_audience: str = ""
    jwt_issuer: str = ""
    # the longest a token may live: exp - iat, and exp - now at every check
    jwt_max_lifetime_s: float = Field(default=86400, gt=0, le=30 * 86400)
    platform_keys: list[PlatformKey] = []

    @model_validator(mode="after")
    def _one_jwt_key(self) -> AuthSettings:
        if self.jwt_secret and self.jwt_public_key_file:
            raise ValueError("set jwt_secret or jwt_public_key_file, not both")
        if self.jwt_secret or self.jwt_public_key_file:
            for name in ("jwt_audience", "jwt_issuer"):
                if not getattr(self, name).strip():
                    raise ValueError(
                        f"auth.{name} is required with resident tokens (jwt_secret or"
                        f" jwt_public_key_file): the `{name.removeprefix('jwt_')[:3]}` claim"
                        " every resident token must carry (docs/security.md)"
                    )
        if self.jwt_algorithm is not None:
            symmetric = self.jwt_algorithm.startswith("HS")
            if symmetric and self.jwt_public_key_file:
                raise ValueError(f"{self.jwt_algorithm} needs jwt_secret, not a public key")
            if not symmetric and self.jwt_secret:
                raise ValueError(f"{self.jwt_algorithm} needs jwt_public_key_file")
        if self.jwt_secret:
            need = HMAC_KEY_BYTES[self.jwt_algorithm or "HS256"]
            if len(self.jwt_secret.encode()) < need:
                raise ValueError(
                    f"auth.jwt_secret is too short: {self.jwt_algorithm or 'HS256'} needs at"
                    f" least {need} bytes (e.g. python -c 'import secrets;"
                    " print(secrets.token_urlsafe(48))')"
                )
        return self

    @field_validator("platform_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"key": k} if isinstance(k, str) else k for k in v]
        return v


class WebhookSettings(Section):
    url: str
    secret: str = Field(repr=False)
    timeout_s: float = Field(default=10, gt=0, le=300)
    retry_for_h: float = Field(default=24, gt=0)

    @field_validator("url")
    @classmethod
    def _webhook_url(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("http", "https") or not urlsplit(v).hostname:
            raise ValueError("expected http(s)://HOST[:PORT]/PATH")
        return v

    @field_validator("secret")
    @classmethod
    def _webhook_secret(cls, v: str) -> str:
        from gateway.webhooks.signing import check_secret

        check_secret(v)
        return v


class CommunitySection(Section):
    file: str = ""


class CommandSettings(Section):
    """Signed commands (door unlocks, barriers, lockers): deadlines and rate limits."""

    timeout_s: float = Field(default=5.0, gt=0, le=60)  # wait for the device's ack, then 504
    validity_s: float = Field(default=5.0, ge=1, le=60)  # expires_at - issued_at
    rate_per_minute_resident: float = Field(default=10, gt=0)
    rate_per_minute_door: float = Field(default=30, gt=0)  # per caller and door
    # all callers together on one door: more than this raises door_attempts_flood (an alert,
    # never a lockout: three residents must not be able to shut everyone out of the gate)
    alert_per_minute_door: float = Field(default=120, gt=0)
    burst: int = Field(default=5, ge=1, le=1000)
    idempotency_ttl_s: float = Field(default=86400, gt=0)

    @model_validator(mode="after")
    def _validity(self) -> CommandSettings:
        if self.validity_s > self.timeout_s:
            raise ValueError(
                "validity_s must not exceed timeout_s: a command answered 504 must never be"
                " delivered (and executed) later"
            )
        return self


class ConsoleOperator(Section):
    """A console account (``[[console.operators]]``): a name and a scrypt hash of its password
    (``python -m gateway.console.password``), optionally scoped to some communities."""

    name: Ident
    password_hash: str = Field(repr=False)
    communities: list[Ident] | None = None  # None: every community

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        from gateway.console.password import check_format

        return check_format(v)


class ConsoleSettings(Section):
    operators: list[ConsoleOperator] = []
    # sign-in limits (gateway/console/throttle.py): failed sign-ins per client address, per
    # operator name at an address, and from everywhere together, in a sliding window
    sign_in_failures_per_address: int = Field(default=10, ge=1)
    sign_in_failures_per_name: int = Field(default=5, ge=1)
    sign_in_failures_overall: int = Field(default=100, ge=1)
    sign_in_window_s: float = Field(default=60, gt=0, le=86400)
    # password checks (scrypt, ~50 ms of a core each) running at once, and waiting
    password_checks_at_once: int = Field(default=1, ge=1, le=16)
    password_checks_waiting: int = Field(default=8, ge=0, le=1000)
    # reverse proxies whose X-Forwarded-For is believed (addresses or networks); none: the
    # connection's peer is the client
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        from gateway.console.throttle import parse_networks

        parse_networks(v)  # a ValueError names the bad entry
        return v


class AdapterEntry(Section):
    """An ecosystem the gateway listens to (``[[adapters]]``, CONTRACT.md 7.1): its adapter,
    the community its unbound devices are recorded in, and the adapter's own options (e.g.
    ``base_topic``, ``full_topic``, ``topic``) as further keys."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str
    community: Ident

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from gateway.adapters.table import ADAPTERS

        if v not in ADAPTERS:
            raise ValueError(f"unknown adapter (known: {', '.join(sorted(ADAPTERS))})")
        return v

    @model_validator(mode="after")
    def _options(self) -> AdapterEntry:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError(f"option {key} = {value!r}: expected a string or a number")
        device_class = (self.model_extra or {}).get("device_class")
        if device_class is not None and device_class not in get_args(DeviceClass):
            raise ValueError(
                f"device_class = {device_class!r}: expected one of {get_args(DeviceClass)}"
            )
        return self

    @property
    def options(self) -> dict[str, str]:
        """The adapter's options, as the adapters read them (text)."""
        return {k: str(v) for k, v in (self.model_extra or {}).items()}


class Settings(Section):
    mqtt: MqttSettings = MqttSettings()
    store: StoreSettings = StoreSettings()
    influxdb: InfluxSettings | None = None
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    webhooks: list[WebhookSettings] = []
    community: CommunitySection = CommunitySection()
    rules: dict[str, dict[str, Any]] = {}  # [rules.<name>]: overrides of gateway/rules/builtin.py

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from gateway.rules.builtin import validate_overrides

        return validate_overrides(v)

    commands: CommandSettings = CommandSettings()
    serial: list[SerialBus] = []  # RS-485 buses (docs/fieldbus.md)
    console: ConsoleSettings = ConsoleSettings()  # web console accounts (dashboards/README.md)
    adapters: list[AdapterEntry] = []  # vendor ecosystems (docs/adapters.md)

    @model_validator(mode="after")
    def _serial_ids(self) -> Settings:
        check_unique(self.serial)
        return self

    @model_validator(mode="after")
    def _adapter_filters(self) -> Settings:
        from gateway.adapters.router import build_router
        from gateway.adapters.table import ADAPTERS

        entries = [(ADAPTERS[a.kind], a.options, a.community) for a in self.adapters]
        build_router(entries, native_prefix=self.mqtt.prefix)  # raises naming the filter
        return self

    @property
    def data_dir(self) -> Path:
        """Where the gateway keeps its own files (the embedded broker's config and data)."""
        return Path(self.store.path).resolve().parent


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``COURTYARD_MQTT_URL=...`` -> ``{"mqtt": {"url": "..."}}`` for the known sections."""
    sections = {
        name
        for name, f in Settings.model_fields.items()
        if name not in ("webhooks", "serial", "adapters") and f.annotation is not None
    }
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in sections or not key:
            continue
        parsed: Any = value
        if value[:1] in "[{" or (section == "auth" and key == "platform_keys"):
            try:
                parsed = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                parsed = [k.strip() for k in value.split(",") if k.strip()]
        out.setdefault(section, {})[key] = parsed
    return out


def _resolve(base: Path, value: str) -> str:
    return value if not value or Path(value).is_absolute() else str(base / value)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read the TOML file (optional) and the environment into validated :class:`Settings`."""
    environ = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    base = Path.cwd()
    source = "defaults"
    if path is not None:
        file = Path(path)
        source = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {file} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
        base = file.resolve().parent
    for section, values in _env_overrides(environ).items():
        current = data.get(section)
        if section == "influxdb" and current is None:
            current = {}
        if not isinstance(current, dict) and current is not None:
            raise ConfigError(f"{section} must be a table")
        data[section] = {**(current or {}), **values}
        if not source.endswith("environment"):
            source = f"{source} + environment"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_error(exc, source, data)) from None
    store = settings.store.model_copy(update={"path": _resolve(base, settings.store.path)})
    community = settings.community.model_copy(
        update={"file": _resolve(base, settings.community.file)}
    )
    mqtt = settings.mqtt.model_copy(
        update={
            k: _resolve(base, getattr(settings.mqtt, k))
            for k in ("ca_file", "cert_file", "key_file")
        }
    )
    auth = settings.auth.model_copy(
        update={"jwt_public_key_file": _resolve(base, settings.auth.jwt_public_key_file)}
    )
    try:  # register-map files of serial meters: resolved against the file's folder, checked
        serial = resolve_map_files(settings.serial, base)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration in {source}:\n  {exc}") from None
    return settings.model_copy(
        update={
            "store": store,
            "community": community,
            "mqtt": mqtt,
            "auth": auth,
            "serial": serial,
        }
    )
