"""Agents: pure-function algorithms over pytree states."""

from seer_jax.agents.curl_sac import CurlSac, CurlSacConfig, CurlSacState

__all__ = ["CurlSac", "CurlSacConfig", "CurlSacState"]
