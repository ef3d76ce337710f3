"""``python -m monespace`` runs the command line."""

from .cli import main

main()
