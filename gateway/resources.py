"""The files the gateway reads at run time (console templates and static files, the Grafana
dashboards), found in the installed packages through ``importlib.resources``: a wheel installed
anywhere runs as a source checkout does, with no path into the source tree."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def directory(package: str, *parts: str) -> Path:
    """A folder of ``package``'s data as a path on disk (Jinja2 and ``StaticFiles`` read from
    one); a clear error, naming the folder, when the installed package lacks it."""
    found = files(package).joinpath(*parts)
    # an installed wheel is unpacked on disk; only a zipped import would give another kind
    if not isinstance(found, Path) or not found.is_dir():
        where = "/".join((package, *parts))
        raise RuntimeError(f"{where} is missing from the installed package ({found})")
    return found


def console_dir(name: str) -> Path:
    """``templates`` or ``static`` of the web console."""
    return directory("dashboards", "console", name)


def grafana_provisioning_dir() -> Path:
    """Grafana's provisioning folder: data sources, the dashboard provider and the dashboards."""
    return directory("dashboards", "grafana", "provisioning")
