"""``python -m perpsim`` runs the command-line interface."""

from perpsim.cli import main

raise SystemExit(main())
