"""Device simulators: realistic traffic for a whole fleet, without hardware."""

from simulators.generator import FleetSimulation, SimConfig, SimMessage
from simulators.publisher import FleetPublisher, PublishOptions, RunSummary, SimulatorError
from simulators.registry_csv import write_registry_csv
from simulators.scenarios import Scenario

__all__ = [
    "FleetPublisher",
    "FleetSimulation",
    "PublishOptions",
    "RunSummary",
    "Scenario",
    "SimConfig",
    "SimMessage",
    "SimulatorError",
    "write_registry_csv",
]
