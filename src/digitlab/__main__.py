"""``python -m digitlab`` runs the CLI."""

from digitlab.cli import main

main()
