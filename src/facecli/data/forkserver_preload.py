"""The loader forkserver's preload: importing it ties the forkserver's life to the facecli process's, and
lets a worker abandoned mid start-up (Ctrl-C as the loader starts) end without a traceback."""

import sys

from facecli.data.parent_death import die_with_parent, quiet_when_abandoned

die_with_parent()
sys.excepthook = quiet_when_abandoned  # the forkserver reports a child's start-up failure through it
