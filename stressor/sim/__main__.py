"""``python -m stressor.sim``: run the simulator (the ``stressor sim`` command, ``stressor.cli.sim``)."""

from stressor.cli.sim import main

main()
