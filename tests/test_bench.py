"""The benchmark's machinery on a tiny shape: it times what it says, counts state bytes,
and writes its table (the real runs are benchmarks/, not tests: timings assert nothing)."""

from __future__ import annotations

import torch

from optimlab.lab import bench
from optimlab.lab.cli import main


def test_measure_times_every_variant_and_counts_state_bytes() -> None:
    variants = bench.chosen_variants(["AdamW auto", "RMSprop for-loop"], everything=False)
    assert [v.label for v in variants] == [bench.BASELINE, "optimlab AdamW auto (native)",
                                           "torch RMSprop for-loop"]
    shapes = [(64, 64), (10,)]
    results, triad = bench.measure(shapes, variants, rounds=2, steps=2,
                                   progress=lambda line: None)
    assert triad > 0 and [len(m.times) for m in results] == [4, 4, 4]
    numel = 64 * 64 + 10
    # the moments' bytes (the 0-d step counters are not per-parameter state)
    assert [m.state_bytes for m in results] == [8 * numel, 8 * numel, 4 * numel]
    text = bench.table("tiny", shapes, results, triad)
    assert "| torch AdamW fused |" in text and "| 1.00 |" in text
    assert text.count("\n| ") == len(variants) + 2  # header, rule, one row per variant


def test_gpt_small_like_is_the_issues_shape() -> None:
    shapes = bench.gpt_small_like()
    assert len(shapes) == 150
    assert abs(sum(torch.Size(s).numel() for s in shapes) - 25.2e6) < 0.05e6


def test_bench_needs_no_lab_extras_to_parse(capsys) -> None:
    try:
        main(["bench", "--help"])
    except SystemExit as done:
        assert done.code == 0
    assert "--shapes" in capsys.readouterr().out
