"""Fault families, by what they break. `ALL_FAMILIES` is the registry the inverters sample from."""

from cligym_env.inversion.families import config, data, native, python_env, settings, source, system, versions
from cligym_env.inversion.families.base import Context, Fault, FaultFamily

ALL_FAMILIES: tuple[FaultFamily, ...] = (
    python_env.FAMILIES
    + system.FAMILIES
    + config.FAMILIES
    + source.FAMILIES
    + data.FAMILIES
    + settings.FAMILIES
    + native.FAMILIES
    + versions.FAMILIES
)
BY_NAME = {f.name: f for f in ALL_FAMILIES}

__all__ = ["ALL_FAMILIES", "BY_NAME", "Context", "Fault", "FaultFamily"]
