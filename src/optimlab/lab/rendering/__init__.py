"""Drawing the answers: matplotlib figures, the self-contained report.html of each
command, and the run folder it is written into."""
