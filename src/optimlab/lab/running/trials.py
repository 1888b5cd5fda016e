"""The benchmark's trials in an Optuna storage: planned once, claimed one at a time by any
number of workers on any number of machines, retried when their worker died.

Each (task, optimizer, study) is an Optuna study; its trials are *slots* 0..N−1, each a
point of a scrambled Sobol sequence (``optuna.samplers.QMCSampler``, seeded by the study,
so that every worker plans the same points), written into the storage as WAITING trials.
A worker claims a WAITING trial by moving it to RUNNING — Optuna's storages make that one
atomic step (``set_trial_state_values`` answers False to all but one claimant) — runs it,
and writes its result as COMPLETE. No trial is ever created by asking the sampler while
running: what to run is all in the storage, so a worker that starts late, or again after
a crash, finds exactly what is left.

Faults. Two workers planning at once may both write a slot: the slot's *owner* is its
lowest-numbered trial that is not FAIL, and a claimed trial that is not its slot's owner
is closed as PRUNED without running (``DUPLICATE``). A running trial proves it is alive
with a heartbeat (a system attribute, every ``HEARTBEAT_S``); a trial whose worker is
gone — a dead process on this machine, or a heartbeat older than ``stale_after`` — is
marked FAIL and a WAITING copy of it (same point, same slot) takes its place, so a trial
killed mid-run is run again, from the start, and no finished one is.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from optimlab.registry import Dimension

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
DUPLICATE = "duplicate"  # a PRUNED trial's reason: its slot was run by another trial
JOURNAL_LOCK_GRACE_S = 10  # a journal lock older than this was left by a killed process


def open_storage(where: str | Path) -> optuna.storages.BaseStorage:
    """An Optuna storage: an RDB URL (``sqlite:///...``, ``postgresql://...``) as is,
    anything else a journal file (created if missing; no server)."""
    text = str(where)
    if "://" in text:
        return optuna.storages.RDBStorage(text)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileOpenLock(str(path), grace_period=JOURNAL_LOCK_GRACE_S)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the benchmark has its own progress bar."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def distributions(space: Sequence[Dimension]) -> dict[str, FloatDistribution]:
    """The Optuna distribution of each dimension, named by its key."""
    return {dim.key: FloatDistribution(dim.low, dim.high, log=dim.log) for dim in space}


def sobol_points(space: Sequence[Dimension], count: int, seed: int) -> list[dict[str, float]]:
    """The first ``count`` points of QMCSampler's scrambled Sobol sequence over ``space``.

    QMCSampler draws its first trial at random (it learns the space from it); a finished
    trial holding the space is added first, so that every point is the sequence's."""
    if not space:
        return [{} for _ in range(count)]
    spread = distributions(space)
    with warnings.catch_warnings():  # "experimental" since optuna 3.0; its API is stable
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                             warn_independent_sampling=False)
    study = optuna.create_study(sampler=sampler)
    study.add_trial(optuna.trial.create_trial(
        params={key: d.low for key, d in spread.items()}, distributions=spread, value=0.0))
    points = []
    for _ in range(count):
        trial = study.ask(spread)
        points.append(dict(trial.params))
        study.tell(trial, 0.0)
    return points


@dataclass(frozen=True)
class Plan:
    """One Optuna study of the benchmark: its name, what it was made with (kept in the
    study's user attributes, to refuse a storage made for another budget), and the point
    of each slot."""

    name: str
    config: Mapping[str, Any]
    points: Sequence[Mapping[str, float]]
    space: Sequence[Dimension]


def ensure_planned(storage: optuna.storages.BaseStorage, plan: Plan) -> None:
    """Create the study if missing and write a WAITING trial for each slot that has none
    (any state). ValueError if the study was made with another configuration."""
    study = optuna.create_study(study_name=plan.name, storage=storage, load_if_exists=True)
    stored = study.user_attrs.get("config")
    if stored is None:
        study.set_user_attr("config", dict(plan.config))
    elif stored != dict(plan.config):
        changed = sorted(key for key in {*stored, *plan.config}
                         if stored.get(key) != plan.config.get(key))
        raise ValueError(
            f"the storage holds study {plan.name!r} made with other settings ("
            + ", ".join(f"{key}: {stored.get(key)!r} there, {plan.config.get(key)!r} now"
                        for key in changed)
            + "); use another --out or --storage, or the same settings")
    present = {trial.user_attrs.get("slot") for trial in study.get_trials(deepcopy=False)}
    spread = distributions(plan.space)
    for slot, point in enumerate(plan.points):
        if slot not in present:
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.WAITING, params=dict(point), distributions=spread,
                user_attrs={"slot": slot}))


def owners(trials: Iterable[FrozenTrial]) -> dict[int, FrozenTrial]:
    """Slot -> the trial that owns it: the lowest-numbered one not FAIL nor a duplicate."""
    owned: dict[int, FrozenTrial] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == TrialState.FAIL or trial.state == TrialState.PRUNED:
            continue
        owned.setdefault(trial.user_attrs["slot"], trial)
    return owned


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_stale(trial: FrozenTrial, stale_after: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone: its process is dead (on this machine), or
    its last heartbeat (its start, before the first) is older than ``stale_after``."""
    now = time.time() if now is None else now
    worker = trial.system_attrs.get("worker")
    if worker:
        host, _, pid = worker.rpartition(":")
        if host == socket.gethostname() and not process_alive(int(pid)):
            return True
    beat = trial.system_attrs.get("heartbeat")
    if beat is None:
        started = trial.datetime_start
        beat = started.timestamp() if started else now
    return now - beat > stale_after


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def retry_stale(storage: optuna.storages.BaseStorage, study: optuna.Study,
                stale_after: float) -> int:
    """Mark each stale RUNNING trial FAIL and put a WAITING copy in its place; how many."""
    retried = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(trial, stale_after):
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # it finished meanwhile: nothing to retry
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs={"slot": trial.user_attrs["slot"], "retry_of": trial.number}))
        retried += 1
    return retried


def claim_trial(storage: optuna.storages.BaseStorage, study: optuna.Study,
                trial: FrozenTrial) -> FrozenTrial | None:
    """Move a WAITING trial to RUNNING for this worker; None when another worker took it
    first, or when it is a duplicate of its slot's owner (then closed as PRUNED)."""
    try:
        if not storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    mine = storage.get_trial(trial._trial_id)
    owner = owners(study.get_trials(deepcopy=False)).get(mine.user_attrs["slot"])
    if owner is not None and owner.number != mine.number:
        storage.set_trial_system_attr(mine._trial_id, "closed", DUPLICATE)
        storage.set_trial_state_values(mine._trial_id, TrialState.PRUNED)
        return None
    storage.set_trial_system_attr(mine._trial_id, "worker", worker_id())
    storage.set_trial_system_attr(mine._trial_id, "heartbeat", time.time())
    return storage.get_trial(mine._trial_id)


def finish(storage: optuna.storages.BaseStorage, trial: FrozenTrial, value: float,
           attrs: Mapping[str, Any]) -> None:
    """Write the trial's measurements (user attributes) and mark it COMPLETE."""
    for key, item in attrs.items():
        storage.set_trial_user_attr(trial._trial_id, key, item)
    storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, values=[value])


def give_back(storage: optuna.storages.BaseStorage, study: optuna.Study,
              trial: FrozenTrial) -> None:
    """A trial this worker stops (Ctrl-C): FAIL, and a WAITING copy for the next run."""
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={"slot": trial.user_attrs["slot"], "retry_of": trial.number}))


class Heartbeat:
    """While open, a thread writes the trial's heartbeat every ``HEARTBEAT_S``."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial: FrozenTrial,
                 every: float = HEARTBEAT_S) -> None:
        self.storage, self.trial_id, self.every = storage, trial._trial_id, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.storage.set_trial_system_attr(self.trial_id, "heartbeat", time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
