"""Fault families, by what they break. `ALL_FAMILIES` is the registry the inverters sample from."""

from cligym_env.inversion.families import config, python_env, system
from cligym_env.inversion.families.base import Context, Fault, FaultFamily

ALL_FAMILIES: tuple[FaultFamily, ...] = python_env.FAMILIES + system.FAMILIES + config.FAMILIES
BY_NAME = {f.name: f for f in ALL_FAMILIES}

__all__ = ["ALL_FAMILIES", "BY_NAME", "Context", "Fault", "FaultFamily"]
