"""The `facecli` command and `python -m facecli` (also what torchrun launches).

A Ctrl-C at any moment, even while the command's libraries are still loading, ends it with one line and
exit code 130. While they load nothing has been written, so the process ends at once; once a command runs,
its own boundary (cli.app) reports it the same way after cleaning up. (Python's own start-up, before
this module runs, is out of reach: up to ~0.3 s on a loaded 2-core machine, measured.)
"""

import os
import signal
import sys


def _interrupted_while_loading(signum: int, frame: object) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)  # nothing to clean up yet: no file written, no worker started


def main() -> None:
    """Console-script entry point."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # left alone where SIGINT is ignored (a background job)
        signal.signal(signal.SIGINT, _interrupted_while_loading)
    from facecli.cli import app
    from facecli.cli.app import resume_without_folder

    sys.argv[1:] = resume_without_folder(sys.argv[1:])
    signal.signal(signal.SIGINT, previous)
    try:
        app()
    except KeyboardInterrupt:
        sys.unraisablehook = lambda unraisable: None  # half-built objects may fail as the process ends
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":  # not when a spawned or forkserver process re-imports the main module
    main()
