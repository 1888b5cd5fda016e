"""What a benchmark returns: its setup, the standings over its finished trials, and how
the run went (``optimlab.lab.write_report`` and ``optimlab.lab.table`` take it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from optimlab.lab.analysis.standings import Standings
from optimlab.lab.running.benchmark import Setup


@dataclass
class BenchmarkResults:
    """What a benchmark did: its setup, the standings over its finished trials, the
    tasks left out (name -> why, with the command that fixes it), the trials planned
    and finished, how many finished during this call (by any worker on the storage) and
    how long it took."""

    setup: Setup
    standings: Standings
    unavailable: dict[str, str] = field(default_factory=dict)
    budget: int = 0
    complete: int = 0
    ran: int = 0
    seconds: float = 0.0
    workers: int = 1
    interrupted: bool = False
