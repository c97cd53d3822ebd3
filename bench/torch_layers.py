#!/usr/bin/env python3
"""Times the layers of a cnnergy layer-case file through PyTorch (cuDNN) for comparison.

Usage: python3 bench/torch_layers.py CASES.json OUT.json

CASES.json is what `cnnergy bench-layers --cases-out` writes: the same layer configurations
cnnergy times. Each is run in the precisions cnnergy runs: fp32 NCHW (cuDNN may use TF32,
PyTorch's default for convolutions) and fp16 channels-last. cudnn.benchmark=True, CUDA
events, warm-up, the median of many runs, inputs rotated among several buffers so repeats
do not hit in L2. Inputs are random, never zeros.
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.backends.cudnn.benchmark = True


def median_us(fn, rotate, min_runs=30, min_ms=100.0):
    for i in range(5):
        fn(i % rotate)
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, total, i = [], 0.0, 0
    while (len(times) < min_runs or total < min_ms) and len(times) < 2000:
        # The GPU spins ~50 us while the host records the start event and enqueues the
        # op, so the interval holds the kernels, not the host's launch latency (cnnergy's
        # bench::time does the same with its spin_ns kernel).
        torch.cuda._sleep(100_000)
        start.record()
        fn(i % rotate)
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop)
        times.append(ms * 1e3)
        total += ms
        i += 1
    times.sort()
    return times[len(times) // 2]


def rotation(nbytes):
    # Enough buffers that one pass over them exceeds the L2 cache (50-60 MB on H100/H200).
    return max(1, min(8, int(160e6 // max(nbytes, 1)) + 1))


def run_case(c, dtype, channels_last):
    dev = "cuda"
    n, ci, h, w = c["input"]
    kind = c["kind"]
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def make_input(shape):
        return torch.empty(shape, device=dev, dtype=dtype).uniform_(-1, 1).contiguous(memory_format=fmt if len(shape) == 4 else torch.contiguous_format)

    in_shape = (n, ci, h, w) if kind not in ("linear", "softmax") else (n, ci)
    nbytes = torch.Size(in_shape).numel() * (4 if dtype == torch.float32 else 2)
    rot = rotation(nbytes)
    xs = [make_input(in_shape) for _ in range(rot)]
    with torch.no_grad():
        if kind == "conv":
            co = c["output"][1]
            pt, pl, pb, pr = c["pad"]
            if (pt, pl) != (pb, pr):
                return None
            m = torch.nn.Conv2d(ci, co, (c["kh"], c["kw"]), tuple(c["stride"]), (pt, pl), tuple(c["dilation"]), c["groups"], c["bias"])
            m = m.to(device=dev, dtype=dtype, memory_format=fmt).eval()
            fn = lambda i: m(xs[i])
        elif kind == "linear":
            m = torch.nn.Linear(ci, c["output"][1], bias=c["bias"]).to(device=dev, dtype=dtype).eval()
            fn = lambda i: m(xs[i])
        elif kind == "maxpool":
            pt, pl, _, _ = c["pad"]
            fn = lambda i: F.max_pool2d(xs[i], (c["kh"], c["kw"]), tuple(c["stride"]), (pt, pl), tuple(c["dilation"]), c["ceil_mode"])
        elif kind == "global_avg":
            fn = lambda i: F.adaptive_avg_pool2d(xs[i], 1)
        elif kind == "relu":
            fn = lambda i: F.relu(xs[i])
        elif kind == "relu6":
            fn = lambda i: F.relu6(xs[i])
        elif kind == "batchnorm":
            rm, rv = torch.rand(ci, device=dev, dtype=dtype), torch.rand(ci, device=dev, dtype=dtype) + 0.5
            g, b = torch.rand(ci, device=dev, dtype=dtype), torch.rand(ci, device=dev, dtype=dtype)
            fn = lambda i: F.batch_norm(xs[i], rm, rv, g, b, False, 0.0, 1e-5)
        elif kind == "add":
            ys = [make_input(in_shape) for _ in range(rot)]
            fn = lambda i: torch.add(xs[i], ys[i])
        elif kind == "softmax":
            fn = lambda i: F.softmax(xs[i], dim=1)
        elif kind == "to_nhwc_f16":
            if dtype != torch.float32:
                return None
            fn = lambda i: xs[i].to(dtype=torch.float16, memory_format=torch.channels_last)
        else:
            return None
        return median_us(fn, rot)


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        for name, dtype, cl in (("f32", torch.float32, False), ("f16_nhwc", torch.float16, True)):
            try:
                us = run_case(c, dtype, cl)
            except Exception as e:  # a layer PyTorch cannot run this way is reported, not fatal
                print(f"skip {c['id']} {name}: {e}", file=sys.stderr)
                us = None
            if us is not None:
                out.append({"id": c["id"], "precision": name, "median_us": us})
    json.dump({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
               "tf32_conv": torch.backends.cudnn.allow_tf32, "device": torch.cuda.get_device_name(),
               "results": out}, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
