"""Training and recording: the runner (one run of a spec with a seed), the records it
hands on, the sweep, the trajectories, and the benchmark's trials in an Optuna storage."""
