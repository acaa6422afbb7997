"""Images that fail to decode during a run: listed in bad_images.txt, counted against --max-bad-fraction.

The loader replaces such an image by another of the same identity (data.training_set.TrainImages); this
keeps the record, which every rank holds the same, so that every rank takes the same decision to stop.
"""

from __future__ import annotations

from pathlib import Path

from facecli.fileio import write_text_atomic

BAD_FILE = "bad_images.txt"


class BadImages:
    """The distinct images that failed, in the order found, with the first reason seen for each."""

    def __init__(self, run_dir: Path, total: int, max_fraction: float, write: bool, found: dict[str, str]) -> None:
        """`found` is the run state's record (empty for a new run), kept up to date in place."""
        self.path, self.total, self.max_fraction, self.write = run_dir / BAD_FILE, total, max_fraction, write
        self.found = found

    def __len__(self) -> int:
        return len(self.found)

    def add(self, failures: list[str]) -> list[str]:
        """Record `path<TAB>reason` lines; returns the paths not seen before (and rewrites the file if any)."""
        new = []
        for line in failures:
            path, _, reason = line.partition("\t")
            if path not in self.found:
                self.found[path] = reason
                new.append(path)
        if new and self.write:
            write_text_atomic(self.path, "".join(f"{p}\t{r}\n" for p, r in self.found.items()))
        return new

    @property
    def over_limit(self) -> bool:
        return len(self.found) > self.max_fraction * self.total

    def first_note(self) -> str:
        """The run log's one line, at the first bad image."""
        path, reason = next(iter(self.found.items()))
        return (
            f"{path}: {reason}; replaced by another image of its identity, training goes on. Every such image "
            f"is listed in {self.path} (the run stops past --max-bad-fraction {self.max_fraction:g})"
        )

    def stop_message(self) -> str:
        """Why the run stopped, naming the first bad images."""
        first = "; ".join(f"{p}: {r}" for p, r in list(self.found.items())[:3])
        return (
            f"{len(self.found)} of {self.total} training images failed to decode "
            f"({len(self.found) / self.total:.1%}, more than --max-bad-fraction {self.max_fraction:g}); "
            f"first: {first}. "
            f"All are listed in {self.path}"
        )
