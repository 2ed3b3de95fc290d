"""cligym: environment-repair tasks for terminal agents, made by environment inversion.

Importing this package registers the Gymnasium environments (`cligym/Repair-v0`).
"""

__version__ = "0.1.0"

from cligym_env import envs  # noqa: E402,F401  (registers the environments)
