"""What a user gives the lab, checked before anything trains: optimizer specs
(``adam:lr=3e-4``) and the settings of a run (steps, seeds, schedule, clipping)."""
