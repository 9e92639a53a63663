"""The embedded simulator of the test-calls API: a pure model (``model``) behind a raw ASGI app (``app``), with
fault injection (``faults``, ``windows``) and signed webhooks (``webhooks``), run by ``server``: on loopback
in-process, in a child process, or in memory. Its command is ``stressor.cli.sim``.
"""

from stressor.sim.config import Distribution, SimConfig, SimConfigError
from stressor.sim.model import SimModel
from stressor.sim.records import TruthRecord

__all__ = ["Distribution", "SimConfig", "SimConfigError", "SimModel", "TruthRecord"]
