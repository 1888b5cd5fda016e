"""From records to answers: summaries over seeds, verdicts beyond noise, the benchmark's
time-to-target cells, performance profiles and scores, and the text tables."""
