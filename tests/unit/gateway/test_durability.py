"""``[store] durability``: what the configuration says is what every writing connection does.

The syncs themselves are counted against a running gateway in
``tests/integration/test_durable_ack.py``; here, that the setting reaches SQLite (``PRAGMA
synchronous``: 2 is FULL, 1 is NORMAL) on the journal's connection (which the rules, alerts,
tickets and webhook outbox share) and on the audit log's, and that a wrong value is refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.config import ConfigError, Registry, load_settings
from gateway.service import Gateway
from gateway.store.reader import JournalReader

FULL, NORMAL = 2, 1


def synchronous(conn: sqlite3.Connection) -> int:
    (level,) = conn.execute("PRAGMA synchronous").fetchone()
    return int(level)


def levels(tmp_path: Path, config: str, environ: dict[str, str]) -> tuple[str, int, int]:
    cfg = tmp_path / "courtyard.toml"
    cfg.write_text(config)
    settings = load_settings(cfg, environ)
    gw = Gateway(settings, Registry())
    gw.store.open()
    gw.audit.open()
    try:
        return settings.store.durability, synchronous(gw.store.conn), synchronous(gw.audit.conn)
    finally:
        gw.audit.close()
        gw.store.close()


def test_full_is_the_default(tmp_path: Path) -> None:
    assert levels(tmp_path, '[store]\npath = "c.db"\n', {}) == ("full", FULL, FULL)


def test_normal_when_the_operator_says_so(tmp_path: Path) -> None:
    config = '[store]\npath = "c.db"\ndurability = "normal"\n'
    assert levels(tmp_path, config, {}) == ("normal", NORMAL, NORMAL)


def test_normal_from_the_environment(tmp_path: Path) -> None:
    config = '[store]\npath = "c.db"\n'
    env = {"COURTYARD_STORE_DURABILITY": "normal"}
    assert levels(tmp_path, config, env) == ("normal", NORMAL, NORMAL)


@pytest.mark.parametrize("value", ["off", "FULL", "", "extra"])
def test_an_unknown_value_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    cfg = tmp_path / "courtyard.toml"
    cfg.write_text(f'[store]\ndurability = "{value}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert f"store.durability = {value!r}" in str(err.value)
    assert "'full' or 'normal'" in str(err.value)


def test_the_sinks_cursor_connection_does_not_sync(tmp_path: Path) -> None:
    """A sink's cursor acknowledges nothing to anyone: it is not worth a sync per batch."""
    cfg = tmp_path / "courtyard.toml"
    cfg.write_text('[store]\npath = "c.db"\n')
    gw = Gateway(load_settings(cfg, {}), Registry())
    gw.store.open()
    reader = JournalReader(gw.store.path)
    try:
        assert synchronous(reader.conn) == NORMAL
    finally:
        reader.close()
        gw.store.close()
