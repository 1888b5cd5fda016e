"""The benchmark's trials in a shared Optuna storage: a run killed with SIGKILL at a random
moment and started again ends with exactly the trials of an uninterrupted run; two
processes on one storage split the budget and never run a trial twice — on a journal
file, and on a real PostgreSQL server this test starts on the loopback and stops."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optimlab.lab.running.trials import DUPLICATE, open_storage, quiet_optuna

SMALL = ["--tasks", "digits-mlp", "--optimizers", "sgd", "adam", "--trials", "2",
         "--studies", "2", "--steps", "30", "--workers", "1", "--no-progress"]
BUDGET = 2 * (2 * 2 + 2)  # 2 optimizers x (2 studies x 2 trials + 2 one-shot runs)


def command(storage: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "optimlab.lab.commands.cli", "benchmark", *SMALL,
            "--storage", storage, "--out", str(out), *extra]


def run(storage: str, out: Path, *extra: str) -> None:
    done = subprocess.run(command(storage, out, *extra), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def trials_of(storage: str) -> dict[str, list]:
    """Study name -> its trials, from the storage."""
    quiet_optuna()
    opened = open_storage(storage)
    return {summary.study_name: optuna.load_study(study_name=summary.study_name,
                                                  storage=opened).get_trials()
            for summary in optuna.get_all_study_summaries(opened)}


def outcome(storage: str) -> dict[tuple[str, int], tuple]:
    """(study, slot) -> (point, steps to target, final metric) of its finished trial;
    asserts that every slot finished exactly once."""
    found = {}
    for name, trials in trials_of(storage).items():
        for trial in trials:
            key = (name, trial.user_attrs["slot"])
            if trial.state == TrialState.COMPLETE:
                assert key not in found, f"{key} finished twice"
                found[key] = (tuple(sorted(trial.params.items())),
                              trial.user_attrs["steps_to_target"], trial.user_attrs["final"])
            elif trial.state == TrialState.PRUNED:
                assert trial.system_attrs.get("closed") == DUPLICATE
                assert "final" not in trial.user_attrs  # a duplicate never ran
    return found


def test_a_killed_run_resumes_to_the_trials_of_an_uninterrupted_one(tmp_path: Path,
                                                                    seed: int) -> None:
    one_study = ("--studies", "1")  # 6 trials: three runs of them in a few seconds each
    whole = str(tmp_path / "whole.journal")
    started = time.perf_counter()
    run(whole, tmp_path / "a", *one_study)
    took = time.perf_counter() - started
    expected = outcome(whole)
    assert len(expected) == 2 * (2 + 1)
    # SIGKILL at a random moment of a run as long as the uninterrupted one
    moment = random.Random(seed).uniform(0.2, 1.0) * took
    print(f"killing after {moment:.2f} s of {took:.2f} s (test seed {seed})")
    killed = str(tmp_path / "killed.journal")
    process = subprocess.Popen(command(killed, tmp_path / "b", *one_study),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run(killed, tmp_path / "b", *one_study)
    assert outcome(killed) == expected


def share(storage: str, out: Path) -> dict[str, int]:
    """Two benchmark processes at once on ``storage``; trials finished per worker."""
    processes = [subprocess.Popen(command(storage, out / str(i)), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in processes:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-3000:]
    assert len(outcome(storage)) == BUDGET
    workers: dict[str, int] = {}
    for trials in trials_of(storage).values():
        for trial in trials:
            if trial.state == TrialState.COMPLETE:
                worker = trial.system_attrs["worker"]
                workers[worker] = workers.get(worker, 0) + 1
    return workers


def test_two_processes_share_a_journal_and_run_no_trial_twice(tmp_path: Path) -> None:
    workers = share(str(tmp_path / "shared.journal"), tmp_path)
    assert sum(workers.values()) == BUDGET
    assert len(workers) == 2, workers  # both took part


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres_user(arguments: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root (CI runs as root): run it as ``nobody`` then."""
    if os.geteuid() != 0:
        return arguments
    return ["runuser", "-u", "nobody", "--", *arguments]


@pytest.fixture
def postgres():
    """A PostgreSQL server of its own on 127.0.0.1, a free port, data in a tmp folder;
    the URL of its database; stopped at the end."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL's initdb and pg_ctl are not in {PG_BIN} (Debian: apt-get "
                    "install postgresql; .ci/run installs it)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as a user")
    # pytest's tmp folders are private to their owner: the server's user could not
    # reach one, so its folder is a fresh one in the system's temp folder
    home = Path(tempfile.mkdtemp(prefix="optimlab-pg-"))
    home.chmod(0o777)
    data, port = home / "data", free_port()
    user = "nobody" if os.geteuid() == 0 else (os.environ.get("USER") or "postgres")
    subprocess.run(as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", user,
                                     "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
    subprocess.run(as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options,
                                     "-l", str(home / "log"), "-w", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                                         "fast", "-w", "stop"]),
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_two_processes_share_a_postgresql_server(tmp_path: Path, postgres: str) -> None:
    pytest.importorskip("psycopg", reason="the lab extra's psycopg[binary] reaches "
                        "postgresql:// storages")
    open_storage(postgres)  # the first worker of a cluster makes the tables
    workers = share(postgres, tmp_path)
    assert sum(workers.values()) == BUDGET
    assert len(workers) == 2, workers
