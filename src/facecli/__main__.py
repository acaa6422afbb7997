"""`python -m facecli` (also what torchrun launches)."""

from facecli.cli import main

if __name__ == "__main__":  # not when a spawned or forkserver process re-imports the main module
    main()
