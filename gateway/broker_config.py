"""``courtyard broker-config``: per-device broker credentials and ACLs from the community file.

Writes into one folder:

- ``passwd``: a Mosquitto password file, PBKDF2-SHA512 hashes in Mosquitto's ``$7$`` format;
- ``acl``: each device may publish only on its own ``telemetry``/``event``/``status``/``ack``
  topics and subscribe only to its own ``cmd`` topic; the gateway's account reads everything
  and is the only one that may publish on ``cmd`` topics;
- ``credentials.toml`` (mode 0600): the plain passwords, to provision the devices and the
  gateway. Passwords already in it are kept, so running the command again after adding
  devices changes nobody else's password;
- ``mosquitto.conf``: the settings that switch this on, and the listeners, each binding a
  session to its account (``use_username_as_clientid``): without it any device's credentials
  can connect with the gateway's client id and take over its persistent session, after which
  the broker drops every other device's messages against that device's read ACL.

Nothing secret is printed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Registry, StoreSettings
from gateway.mqtt.codec import max_packet_size

MESSAGES_OUT = ("telemetry", "event", "status", "ack")
ITERATIONS = 101  # what mosquitto_passwd writes for $7$
SALT_BYTES = 12
PASSWORD_BYTES = 24


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    """A ``$7$`` (PBKDF2-SHA512) password hash as Mosquitto 2.0 reads it."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def device_topic(prefix: str, community: str, device_class: str, device: str, message: str) -> str:
    return f"{prefix}/{community}/{device_class}/{device}/{message}"


@dataclass(frozen=True, slots=True)
class Ecosystem:
    """The broker account of one vendor ecosystem (an ``[[adapters]]`` entry: a Zigbee2MQTT
    bridge, the Shelly devices of a site): its name and the topics its devices publish and
    read (the adapter's filters and the command topics of its commandable devices). The
    gateway's account may read and write them too."""

    account: str
    topics: tuple[str, ...]


def acl_text(
    registry: Registry,
    *,
    prefix: str,
    gateway_user: str,
    ecosystems: Sequence[Ecosystem] = (),
) -> str:
    lines = [
        "# Written by courtyard broker-config from the community file; regenerate, do not edit.",
        "# The gateway reads every device topic and is the only account that may publish cmd.",
        f"user {gateway_user}",
        f"topic readwrite {prefix}/#",
        *(f"topic readwrite {t}" for e in ecosystems for t in e.topics),
        "",
    ]
    for e in ecosystems:
        lines += [f"user {e.account}", *(f"topic readwrite {t}" for t in e.topics), ""]
    for d in sorted(registry.devices, key=lambda d: d.id):
        lines.append(f"user {d.id}")
        for message in MESSAGES_OUT:
            topic = device_topic(prefix, d.community, d.device_class, d.id, message)
            lines.append(f"topic write {topic}")
        cmd = device_topic(prefix, d.community, d.device_class, d.id, "cmd")
        lines += [f"topic read {cmd}", ""]
    return "\n".join(lines)


DEFAULT_LISTEN = "127.0.0.1:1883"
DEFAULT_MAX_PAYLOAD = int(StoreSettings.model_fields["max_payload_bytes"].default)


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the broker listens: ``[HOST:]PORT``, no host meaning every interface."""

    port: int
    host: str = ""

    @classmethod
    def parse(cls, text: str) -> Listener:
        host, _, port = text.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listener {text!r}: expected [HOST:]PORT, e.g. 0.0.0.0:8883")
        return cls(int(port), host.strip("[]"))

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class Tls:
    """The broker's certificate and key, and the CA that client certificates must chain to."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


def conf_text(
    out: Path,
    listeners: tuple[Listener, ...] = (Listener.parse(DEFAULT_LISTEN),),
    *,
    tls: Tls | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
) -> str:
    lines = [
        "# Written by courtyard broker-config; regenerate, do not edit.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "set_tcp_nodelay true",
        "# a client sending a bigger packet is disconnected before the broker acknowledges or",
        "# stores it: the gateway's [store] max_payload_bytes plus room for topic and properties",
        f"max_packet_size {max_packet_size(max_payload_bytes)}",
        "",
        "# Mosquitto reads use_username_as_clientid per listener (for the listener line above",
        "# it): every listener that devices or the gateway reach needs it, or one device's",
        "# password can take the gateway's session (docs/broker.md).",
    ]
    for listener in listeners:
        lines.append(f"listener {listener.port} {listener.host}".rstrip())
        lines.append("use_username_as_clientid true")
        if tls is not None:
            lines += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
            if tls.cafile is not None:
                lines.append(f"cafile {tls.cafile}")
            lines.append("# require_certificate true   # when every client presents a certificate")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Written:
    folder: Path
    accounts: int
    new_passwords: int


def _load_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    accounts = data.get("accounts", {})
    return {str(k): str(v) for k, v in accounts.items() if isinstance(v, str) and v}


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (0600), whole or not at all.

    The temporary file is new (``mkstemp``: 0600, ``O_EXCL``, a random name), never a file
    found in the folder: a left-over or planted ``.tmp`` (world-readable, or a symbolic link
    elsewhere) used to keep its mode, or be written through, with the passwords in it. The
    rename gives ``path`` the new file's mode, whatever the old one had."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _private_folder(out: Path) -> None:
    """Create ``out`` readable by its owner only (0700); an existing folder is left as the
    operator set it up (a broker user may need to reach it), its files are 0600 anyway."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.mkdir(mode=0o700)
    except FileExistsError:
        return
    out.chmod(0o700)  # mkdir's mode passes through the umask; this one does not


@dataclass(frozen=True, slots=True)
class Accounts:
    """The broker accounts written into ``folder``, and the gateway's own."""

    folder: Path
    gateway_user: str
    gateway_password: str = field(repr=False)
    accounts: int
    new_passwords: int

    @property
    def passwd(self) -> Path:
        return self.folder / "passwd"

    @property
    def acl(self) -> Path:
        return self.folder / "acl"

    @property
    def credentials(self) -> Path:
        return self.folder / "credentials.toml"


def _load_hashes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def write_accounts(
    registry: Registry,
    out: Path,
    *,
    prefix: str = "community",
    gateway_user: str = "courtyard",
    ecosystems: Sequence[Ecosystem] = (),
) -> Accounts:
    """Write ``passwd``, ``acl`` and ``credentials.toml`` into ``out``: an account per device of
    the registry, one per ecosystem and one for the gateway; passwords already in
    ``credentials.toml`` are kept."""
    _private_folder(out)
    out = out.resolve()
    names = [gateway_user, *sorted(d.id for d in registry.devices)]
    if gateway_user in names[1:]:
        raise ValueError(f"the gateway account {gateway_user!r} is also a device id")
    for e in ecosystems:
        if e.account in names:
            raise ValueError(f"the ecosystem account {e.account!r} is also a device id")
        names.append(e.account)
    if not gateway_user or any(ch in gateway_user for ch in ':"\\\n\r'):
        raise ValueError(f"the gateway account {gateway_user!r} cannot be a broker user name")
    known = _load_credentials(out / "credentials.toml")
    # a kept password keeps its hash: hashing is ~0.15 ms an account, 15 s for 100,000
    # devices at every start of the embedded broker
    hashes = _load_hashes(out / "passwd")
    passwords: dict[str, str] = {}
    new = 0
    for name in names:
        if name in known:
            passwords[name] = known[name]
        else:
            passwords[name] = secrets.token_urlsafe(PASSWORD_BYTES)
            hashes.pop(name, None)
            new += 1
    creds = [
        "# MQTT passwords: provision each device with its own; keep this file private.",
        f'gateway_user = "{gateway_user}"',
        "",
        "[accounts]",
        *(f'"{name}" = "{passwords[name]}"' for name in names),
        "",
    ]
    _write_private(out / "credentials.toml", "\n".join(creds))
    _write_private(
        out / "passwd",
        "".join(
            f"{name}:{hashes.get(name) or mosquitto_hash(passwords[name])}\n" for name in names
        ),
    )
    _write_private(
        out / "acl",
        acl_text(registry, prefix=prefix, gateway_user=gateway_user, ecosystems=ecosystems),
    )
    return Accounts(out, gateway_user, passwords[gateway_user], len(names), new)


def write_broker_config(
    registry: Registry,
    out: Path,
    *,
    prefix: str = "community",
    gateway_user: str = "courtyard",
    listeners: tuple[Listener, ...] = (Listener.parse(DEFAULT_LISTEN),),
    tls: Tls | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
    ecosystems: Sequence[Ecosystem] = (),
) -> Written:
    """Write ``passwd``, ``acl``, ``credentials.toml`` and ``mosquitto.conf`` into ``out``."""
    if not listeners:
        raise ValueError("at least one listener is needed")
    accounts = write_accounts(
        registry, out, prefix=prefix, gateway_user=gateway_user, ecosystems=ecosystems
    )
    conf = conf_text(accounts.folder, listeners, tls=tls, max_payload_bytes=max_payload_bytes)
    _write_private(accounts.folder / "mosquitto.conf", conf)
    return Written(accounts.folder, accounts.accounts, accounts.new_passwords)
