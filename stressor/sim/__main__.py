"""``python -m stressor.sim``: run the simulator (see ``stressor.sim.command``)."""

from stressor.sim.command import main

main()
