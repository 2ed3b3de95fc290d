"""Gymnasium environments: `cligym/Repair-v0` (and, later, `cligym/Invert-v0`)."""

import gymnasium as gym

from cligym_env.envs.invert import InvertEnv
from cligym_env.envs.repair import RepairEnv
from cligym_env.envs.text import SHELL_CHARSET, to_observation

if "cligym/Repair-v0" not in gym.registry:
    # Truly nondeterministic: commands see the clock, a fresh container hostname, $RANDOM; `info` carries
    # durations. Observations of deterministic commands repeat (tests/test_repair_env.py checks that).
    gym.register(id="cligym/Repair-v0", entry_point="cligym_env.envs.repair:RepairEnv", nondeterministic=True)
if "cligym/Invert-v0" not in gym.registry:
    gym.register(id="cligym/Invert-v0", entry_point="cligym_env.envs.invert:InvertEnv", nondeterministic=True)

__all__ = ["SHELL_CHARSET", "InvertEnv", "RepairEnv", "to_observation"]
