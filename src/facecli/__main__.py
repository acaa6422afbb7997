"""`python -m facecli` (also what torchrun launches)."""

from facecli.cli import main

main()
