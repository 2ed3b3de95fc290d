"""Docker images and containers: base image bootstrap, image builds, container sessions, cleanup.

This package knows nothing of tasks, envs, inversion or agents.
"""
