"""The benchmark's machinery on a tiny shape: it times what it says, counts state bytes,
and writes its table (the real runs are benchmarks/, not tests: timings assert nothing)."""

from __future__ import annotations

import torch

from optimlab import ckernel
from optimlab.lab import bench
from optimlab.lab.commands.cli import main


def test_measure_times_every_variant_and_its_floor_and_counts_state_bytes() -> None:
    variants = bench.chosen_variants(["AdamW auto", "RMSprop for-loop",
                                      "AdamW 8-bit moments auto"], everything=False)
    assert [v.label for v in variants] == [bench.BASELINE, "optimlab AdamW auto (generated)",
                                           "optimlab AdamW 8-bit moments auto",
                                           "torch RMSprop for-loop"]
    shapes = [(64, 64), (10,)]
    results, triad = bench.measure(shapes, variants, rounds=2, steps=2,
                                   progress=lambda line: None)
    floors = ["same-traffic floor: 2 fp32 states", "same-traffic floor: 2 8-bit states",
              "same-traffic floor: 1 fp32 state"]
    if not ckernel.available():  # the floors need a C compiler
        floors = []
    assert [m.variant.label for m in results] == [v.label for v in variants] + floors
    assert triad > 0 and all(len(m.times) == 4 for m in results)
    numel = 64 * 64 + 10
    # the moments' bytes (the 0-d step counters are not per-parameter state); 8-bit: the
    # 10-element vector keeps fp32 moments, the matrix 1 byte each and 16 block scales
    assert [m.state_bytes for m in results[:2]] == [8 * numel, 8 * numel]
    assert results[2].state_bytes == 2 * (64 * 64 + 16 * 4) + 8 * 10
    text = bench.table("tiny", shapes, results, triad)
    assert "| torch AdamW fused |" in text and "| 1.00 | 1.00 |" in text
    assert text.count("\n| ") == len(results) + 2  # header, rule, one row per step


def test_gpt_small_like_is_the_issues_shape() -> None:
    shapes = bench.gpt_small_like()
    assert len(shapes) == 150
    assert abs(sum(torch.Size(s).numel() for s in shapes) - 25.2e6) < 0.05e6


def test_char_transformer_is_the_labs_model() -> None:
    shapes = bench.char_transformer()
    assert len(shapes) == 30
    assert abs(sum(torch.Size(s).numel() for s in shapes) - 117e3) < 1e3


def test_bench_needs_no_lab_extras_to_parse(capsys) -> None:
    try:
        main(["bench", "--help"])
    except SystemExit as done:
        assert done.code == 0
    assert "--shapes" in capsys.readouterr().out
