"""`python -m procore_sim`."""

from procore_sim.cli import main

main()
