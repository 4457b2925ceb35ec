"""Shared by the alerting end-to-end tests: a registry, the config and a webhook receiver."""

from __future__ import annotations

from tests.support.webhook_receiver import SECRET


def registry(doors: int = 3, extra: str = "") -> str:
    lines = ["[[communities]]", 'id = "c1"', "[[buildings]]", 'id = "b1"', 'community = "c1"']
    for i in range(doors):
        lines += [
            "[[devices]]",
            f'id = "door-{i:03d}"',
            'community = "c1"',
            'class = "access"',
        ]
    return "\n".join(lines) + "\n" + extra


def device(id_: str, cls: str, every: float | None = None) -> str:
    out = f'[[devices]]\nid = "{id_}"\ncommunity = "c1"\nclass = "{cls}"\n'
    return out + (f"expect_every_s = {every}\n" if every else "")


def config(url: str, rules: str = "") -> str:
    return f'\n[[webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\ntimeout_s = 2\n' + rules
