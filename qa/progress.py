"""A progress bar for long work on the command line (ingest, eval, fit)."""

from __future__ import annotations

import sys


class Progress:
    """A tqdm bar on stderr fed (done, total) pairs; hidden for short runs."""

    def __init__(self, desc: str, unit: str, min_total: int = 200):
        self.desc, self.unit, self.min_total, self.bar = desc, unit, min_total, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is not None and (total != self.bar.total or done < self.bar.n):  # a new run of work
            self.close()
            self.bar = None
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr, disable=total < self.min_total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
