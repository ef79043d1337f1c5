"""Environments: DeepMind Control from pixels (dm_env)."""

from seer_jax.envs.dmc import DMCPixels, default_action_repeat, dmc_task_names, split_task

__all__ = ["DMCPixels", "default_action_repeat", "dmc_task_names", "split_task"]
