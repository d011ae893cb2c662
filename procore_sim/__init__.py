"""A Procore REST API simulator: seeded data, OAuth, paging, rate limits and faults."""

from procore_sim.application import create_app
from procore_sim.config import SimulatorConfig
from procore_sim.state import Simulator

__all__ = ["Simulator", "SimulatorConfig", "create_app"]
