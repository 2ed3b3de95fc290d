"""Policies for `cligym/Repair-v0`: the conversation so far in, the next command out.

A policy never touches Docker; `cligym_env.rollout` plays it against the environment. The conversation format
(system prompt, how observations are shown, how a command is written in a reply) is `agents.prompt`, shared by
every policy, by the trajectory export and by training, so what a model is trained on is what it sees at test time.
"""

from agents.protocol import Action, Policy, PolicyError

__all__ = ["Action", "Policy", "PolicyError"]
