"""The loader forkserver's preload: importing it ties the forkserver's life to the facecli process's."""

from facecli.data.parent_death import die_with_parent

die_with_parent()
