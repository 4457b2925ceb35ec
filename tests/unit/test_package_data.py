"""The wheel carries every file the service reads at run time: each file of ``dashboards/``
(console templates and static files, Grafana dashboards and provisioning) is matched by the
package data of pyproject.toml, and found through ``gateway.resources`` as an installed wheel
finds it. tests/integration/test_wheel.py checks the built wheel itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway import resources

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def run_time_files(package: str) -> set[str]:
    """Every file of a package folder but its Python sources and its README, relative to it."""
    folder = ROOT / package
    return {
        str(f.relative_to(folder))
        for f in folder.rglob("*")
        if f.is_file()
        and f.suffix not in {".py", ".pyc"}
        and "__pycache__" not in f.parts
        and f.name != "README.md"
    }


def covered(package: str, patterns: list[str]) -> set[str]:
    """The files the patterns take, globbed from the package folder as setuptools does."""
    folder = ROOT / package
    return {
        str(f.relative_to(folder))
        for pattern in patterns
        for f in folder.glob(pattern)
        if f.is_file()
    }


def test_dashboards_is_an_installed_package() -> None:
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "dashboards*" in found


def test_every_run_time_file_of_dashboards_is_package_data() -> None:
    files = run_time_files("dashboards")
    # the folders the gateway and a Grafana deployment read from
    for folder in ("console/templates/", "console/static/", "grafana/provisioning/"):
        assert [f for f in files if f.startswith(folder)], folder
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["dashboards"]
    missing = sorted(files - covered("dashboards", patterns))
    assert not missing, f"not in [tool.setuptools.package-data] dashboards: {missing}"


@pytest.mark.parametrize("pattern", ["console/templates/*", "console/static/*"])
def test_removing_a_console_pattern_leaves_files_out(pattern: str) -> None:
    """The check above can fail: without one of the console's patterns, files are left out."""
    patterns = [p for p in PYPROJECT["tool"]["setuptools"]["package-data"]["dashboards"]]
    assert pattern in patterns
    patterns.remove(pattern)
    assert run_time_files("dashboards") - covered("dashboards", patterns)


def test_every_template_the_console_renders_is_found_through_the_package() -> None:
    from gateway.api import console

    templates = resources.console_dir("templates")
    for page in [*console.PAGES, "login", "base", "macros"]:
        assert (templates / f"{page}.html").is_file(), page
    assert {f.name for f in resources.console_dir("static").iterdir()} >= {
        "console.css",
        "security.js",
        "devices.js",
    }
    provisioning = resources.grafana_provisioning_dir()
    assert list(provisioning.glob("dashboards/courtyard/*.json"))
    assert (provisioning / "datasources" / "courtyard.yaml").is_file()


def test_a_missing_data_folder_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"dashboards/console/nothing is missing"):
        resources.console_dir("nothing")


def test_the_license_is_declared_and_shipped() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
