"""The embedded simulator of the test-calls API: a pure model (``model``) behind a raw ASGI app
(``app``), served by uvicorn on loopback in-process (``server.serve``) or in a child process
(``server.SimulatorProcess``).

Modules: ``config`` (settings), ``records`` (values), ``model`` (state machine), ``validation`` (request
checks), ``views`` (JSON shapes), ``app`` (HTTP), ``windows`` and ``faults`` (fault injection: rate limit,
5xx, latency, stalls, resets), ``webhooks`` (signed event delivery), ``server`` (running it), ``command`` (the
CLI command).
"""

from stressor.sim.config import Distribution, SimConfig, SimConfigError
from stressor.sim.model import SimModel
from stressor.sim.records import TruthRecord

__all__ = ["Distribution", "SimConfig", "SimConfigError", "SimModel", "TruthRecord"]
