#!/usr/bin/env python3
"""Whole-model inference speed of PyTorch eager (cuDNN) for comparison with `cnnergy run`.

Usage: python3 bench/torch_models.py OUT.json [--models alexnet,...] [--batches 1,32,128]
                                               [--dtypes f32,tf32,f16] [--seconds 1.0]

The six torchvision models cnnergy builds in (weights=None: speed does not depend on the
values; GoogLeNet with aux_logits=False as cnnergy models it), eval mode, inference_mode.
  fp32: NCHW, cuDNN with TF32 allowed for convolutions (PyTorch's default:
        cudnn.allow_tf32=True, cuda.matmul.allow_tf32=False).
  tf32: as fp32 plus cuda.matmul.allow_tf32=True, so linear layers run on TF32 too: like
        for like with `cnnergy run --dtype tf32` (TF32 convs and linear layers).
  fp16: model and input .half(), channels_last.
cudnn.benchmark=True; warm-up (at least 5 batches and 0.3 s, which also lets cuDNN pick its
algorithms); then each batch timed alone with CUDA events (start, forward, stop, sync)
until at least --seconds of timed work and 10 batches. Median and p95 latency per batch,
images/s = batch / median, peak memory = torch.cuda.max_memory_allocated over warm-up and
timing (weights, activations and cuDNN workspace; weight bytes reported separately).
A setting that fails (out of memory, ...) is recorded with status FAIL and its error line.
"""
import argparse
import json
import sys
import time

import torch
import torchvision

MODELS = ["alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v2", "squeezenet1_0"]


def build(name):
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    return torchvision.models.get_model(name, **kwargs).eval()


def percentile(sorted_ms, q):
    # Nearest rank, as cnnergy reports its p95.
    import math

    k = max(1, min(len(sorted_ms), math.ceil(len(sorted_ms) * q)))
    return sorted_ms[k - 1]


def time_model(model, x, seconds):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0, n = time.perf_counter(), 0
    while n < 5 or time.perf_counter() - t0 < 0.3:
        model(x)
        n += 1
    torch.cuda.synchronize()
    times, total = [], 0.0
    while (total < seconds * 1e3 or len(times) < 10) and len(times) < 100000:
        start.record()
        model(x)
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop)
        times.append(ms)
        total += ms
    return sorted(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", default="1,32,128")
    p.add_argument("--dtypes", default="f32,f16")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's defaults, stated
    torch.backends.cuda.matmul.allow_tf32 = False  # set per setting below: True for tf32 only
    dev = torch.device("cuda")
    rows = []
    t_start = time.time()
    for name in [m for m in a.models.split(",") if m]:
        for dt in [d for d in a.dtypes.split(",") if d]:
            dtype = torch.float16 if dt == "f16" else torch.float32
            torch.backends.cuda.matmul.allow_tf32 = dt == "tf32"
            fmt = torch.channels_last if dt == "f16" else torch.contiguous_format
            try:
                torch.manual_seed(a.seed)
                model = build(name).to(dev, dtype=dtype, memory_format=fmt)
                weight_bytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
            except Exception as e:
                for b in a.batches.split(","):
                    rows.append(dict(model=name, dtype=dt, batch=int(b), status="FAIL", error=f"{type(e).__name__}: {e}"[:300]))
                continue
            for b in [int(x) for x in a.batches.split(",") if x]:
                row = dict(model=name, dtype=dt, batch=b, channels_last=dt == "f16", tf32_convs=dt in ("f32", "tf32"),
                           tf32_matmul=dt == "tf32")
                try:
                    x = torch.randn(b, 3, 224, 224, device=dev, dtype=dtype).contiguous(memory_format=fmt)
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    with torch.inference_mode():
                        ms = time_model(model, x, a.seconds)
                    med, p95 = ms[len(ms) // 2], percentile(ms, 0.95)
                    row.update(status="ok", batches=len(ms), latency_ms_median=med, latency_ms_p95=p95,
                               images_per_s=b * 1000.0 / med, peak_bytes=torch.cuda.max_memory_allocated(),
                               weight_bytes=weight_bytes, input_bytes=x.numel() * x.element_size())
                except Exception as e:
                    row.update(status="FAIL", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
                finally:
                    x = None
                    torch.cuda.empty_cache()
                rows.append(row)
                msg = (f"{row['images_per_s']:9.1f} img/s, median {row['latency_ms_median']:.3f} ms"
                       if row["status"] == "ok" else row["error"])
                print(f"torch {name:14s} {dt} batch {b:4d}: {msg}", file=sys.stderr, flush=True)
            model = None
            torch.cuda.empty_cache()
    meta = dict(torch=torch.__version__, torchvision=torchvision.__version__, cudnn=torch.backends.cudnn.version(),
                device=torch.cuda.get_device_name(0), seconds=round(time.time() - t_start, 1),
                min_timed_seconds=a.seconds)
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
