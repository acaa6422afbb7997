"""The `facecli` command and `python -m facecli` (also what torchrun launches).

A Ctrl-C at any moment, even while the command's libraries are still loading, ends it with one line and
exit code 130; once a command runs, its own boundary (cli.app) reports it the same way.
"""

import sys


def main() -> None:
    """Console-script entry point."""
    try:
        from facecli.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":  # not when a spawned or forkserver process re-imports the main module
    main()
