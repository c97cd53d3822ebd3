#!/usr/bin/env python3
"""Joins `cnnergy bench-layers --json` with bench/torch_layers.py's output and checks the
kernels issue's targets. Prints a markdown table (for bench/RESULTS.md) and a summary.

Usage: python3 bench/compare.py CNNERGY.json TORCH.json [OUT.md]
"""
import json
import sys
from collections import defaultdict

MEMORY_BOUND = {"maxpool", "avgpool", "global_avg", "relu", "relu6", "batchnorm", "add", "softmax", "to_nhwc_f16"}


def main():
    ours = json.load(open(sys.argv[1]))
    torch = json.load(open(sys.argv[2]))
    copy = ours["copy_gbs"]
    best_ours = {}  # (id, precision) -> result with the lowest time
    for r in ours["results"]:
        k = (r["id"], r["precision"])
        if k not in best_ours or r["median_us"] < best_ours[k]["median_us"]:
            best_ours[k] = r
    theirs = {(r["id"], r["precision"]): r["median_us"] for r in torch["results"]}
    # cuDNN's best for a layer over the precisions it ran in (fp32 may use TF32).
    torch_best = defaultdict(lambda: float("inf"))
    for (i, _), us in theirs.items():
        torch_best[i] = min(torch_best[i], us)

    lines = [f"device: {ours['device']} ({ours['target']}); copy bandwidth {copy:.0f} GB/s; "
             f"PyTorch {torch['torch']}, cuDNN {torch['cudnn']}, TF32 for fp32 convs: {torch['tf32_conv']}", "",
             "| layer | x | precision | best variant | ours us | cuDNN us (same precision) | ours/cuDNN time | TFLOP/s | % copy BW |",
             "|---|---|---|---|---|---|---|---|---|"]
    mem_fail, slow, tc3x3 = [], [], []
    for (i, prec), r in sorted(best_ours.items()):
        t = theirs.get((i, "f16_nhwc" if prec in ("f16_nhwc", "bf16_nhwc") else "f32" if prec in ("f32", "tf32_nhwc") else prec))
        ratio = r["median_us"] / t if t else float("nan")
        pct = 100 * r["gbs"] / copy
        lines.append(f"| {i} | {r['count']} | {prec} | {r['variant']} | {r['median_us']:.1f} | "
                     f"{t if t is None else round(t, 1)} | {ratio:.2f} | {r['tflops']:.2f} | {pct:.0f} |")
        if r["kind"] in MEMORY_BOUND and r["median_us"] > 20 and pct < 85:
            mem_fail.append((i, prec, pct))
        if t and ratio > 3:
            slow.append((i, prec, ratio))
        if prec == "f16_nhwc" and i.startswith("resnet50/b64/") and r["kind"] == "conv" and t:
            case_is_3x3 = ".conv2" in i
            if case_is_3x3:
                tc3x3.append((i, t / r["median_us"]))
    # Per layer, our best over all precisions against cuDNN's best over all precisions.
    per_layer = defaultdict(lambda: float("inf"))
    for (i, _), r in best_ours.items():
        per_layer[i] = min(per_layer[i], r["median_us"])
    slow_best = [(i, us / torch_best[i]) for i, us in per_layer.items() if torch_best[i] < float("inf") and us > 3 * torch_best[i]]

    lines += ["", "## Targets", ""]
    lines.append(f"- memory-bound kernels >= 85% of copy bandwidth (layers over 20 us): "
                 f"{'met' if not mem_fail else f'missed on {len(mem_fail)}'}")
    for i, p, pct in mem_fail:
        lines.append(f"  - {i} {p}: {pct:.0f}%")
    if tc3x3:
        worst = min(tc3x3, key=lambda x: x[1])
        lines.append(f"- tensor-core conv on ResNet-50 3x3 at batch 64 >= 70% of cuDNN: worst {100 * worst[1]:.0f}% ({worst[0]}); "
                     f"{'met' if worst[1] >= 0.7 else 'missed'}")
        for i, f in tc3x3:
            lines.append(f"  - {i}: {100 * f:.0f}% of cuDNN")
    lines.append(f"- no layer slower than 3x cuDNN's best (our best precision vs theirs): "
                 f"{'met' if not slow_best else f'missed on {len(slow_best)}'}")
    for i, f in sorted(slow_best, key=lambda x: -x[1]):
        lines.append(f"  - {i}: {f:.1f}x")
    lines.append(f"- same-precision comparisons slower than 3x: {len(slow)}")
    for i, p, f in sorted(slow, key=lambda x: -x[2])[:40]:
        lines.append(f"  - {i} {p}: {f:.1f}x")
    text = "\n".join(lines)
    print(text)
    if len(sys.argv) > 3:
        open(sys.argv[3], "w").write(text + "\n")


if __name__ == "__main__":
    main()
