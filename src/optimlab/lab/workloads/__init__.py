"""What the lab trains: tasks (a name, a headline metric and its target, defaults), their
data (bundled or generated, never downloaded at run time), models and problems, and the
2-D surfaces of the trajectories."""
