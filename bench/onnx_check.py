#!/usr/bin/env python3
"""Correctness of cnnergy's ONNX import + GPU executor against PyTorch, on the GPU machine.

Usage: python3 bench/onnx_check.py OUTDIR [options]     (bench/onnx_check.sh wraps it)

For each torchvision model (weights=None, fixed seed, eval mode; batch-norm statistics and
affine parameters randomized from the same seed so that folding them is really tested):
  1. export it to ONNX: the TorchScript exporter (opset 17 or --opset, dynamo=False, dynamic batch) and,
     for the --dynamo models, the dynamo exporter (its default opset; weights in an external
     data file as it writes by default);
  2. PyTorch fp32 logits on the GPU with TF32 off (torch.backends.cuda.matmul.allow_tf32 =
     torch.backends.cudnn.allow_tf32 = False): the reference;
  3. onnxruntime (CPU provider) on the same file: tells an exporter problem from a cnnergy one;
  4. `cnnergy run FILE.onnx --device gpu --dtype f32|f16 --batch B --input X --logits-out Y`;
  5. relative L2 |cnnergy - torch| / |torch|: pass at <= 1e-4 (f32) and <= 1e-2 (f16). The
     f16 run is compared with the same PyTorch fp32 reference.

Large files (ONNX models, inputs, logits) go to --workdir (default $TMPDIR/cnnergy-onnx-check),
never to OUTDIR, which gets only onnx_check.json and onnx_check.md (the final table, also printed).
A failing export or cnnergy run is recorded as FAIL with its error line, and the script goes on.

`--device cpu` runs the same check on a machine without a GPU: PyTorch fp32 on the CPU is the reference and
cnnergy runs the file on its CPU reference backend (`--device cpu`, f64 accumulation); only f32 is checked.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

MAIN = ["alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v2", "squeezenet1_0"]
# Other plain torchvision CNNs. Some use operators cnnergy does not import (MobileNetV3's HardSwish,
# EfficientNet's SiLU = x * sigmoid(x), ShuffleNet's channel shuffle): those are expected to FAIL with
# an "unsupported operator" line, which is what the table should show.
EXTRA = ["resnet18", "resnet101", "vgg11", "vgg11_bn", "densenet121", "mnasnet1_0", "resnext50_32x4d",
         "wide_resnet50_2", "regnet_x_400mf", "squeezenet1_1", "inception_v3", "shufflenet_v2_x1_0",
         "mobilenet_v3_small", "efficientnet_b0"]
TOL = {"f32": 1e-4, "f16": 1e-2}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir")
    p.add_argument("--models", default=",".join(MAIN), help="TorchScript-exported models tested in --dtypes")
    p.add_argument("--dtypes", default="f32,f16")
    p.add_argument("--dynamo", default="resnet50,mobilenet_v2,squeezenet1_0,googlenet",
                   help="models also exported with the dynamo exporter ('' for none)")
    p.add_argument("--extra", default=",".join(EXTRA), help="other torchvision models ('' for none)")
    p.add_argument("--extra-dtypes", default="f32", help="dtypes for the dynamo exports and the extra models")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bin", default="target/release/cnnergy")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cnnergy-onnx-check"))
    p.add_argument("--no-ort", action="store_true", help="skip the onnxruntime cross-check")
    p.add_argument("--opset", type=int, default=17, help="opset of the TorchScript exports (the issue asks for 13-17)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per cnnergy run")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                   help="gpu: PyTorch and cnnergy on the GPU; cpu: PyTorch on the CPU, cnnergy's CPU reference backend")
    return p.parse_args()


def csv(s):
    return [x for x in s.split(",") if x]


def rel_l2(got, want):
    import numpy as np

    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    if got.shape != want.shape:
        return float("nan")
    den = float(np.linalg.norm(want))
    return float(np.linalg.norm(got - want)) / max(den, 1e-300)


def build_model(name, seed):
    import torch
    import torchvision

    torch.manual_seed(seed)
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    if name == "inception_v3":
        kwargs.update(aux_logits=False, init_weights=True)
    m = torchvision.models.get_model(name, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.empty(c).uniform_(-0.2, 0.2, generator=g))
                mod.running_var.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=g))
                if mod.affine:
                    mod.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=g))
                    mod.bias.copy_(torch.empty(c).uniform_(-0.2, 0.2, generator=g))
    return m.eval()


def input_size(name):
    return 299 if name == "inception_v3" else 224


def export(model, x, path, exporter, opset=17):
    import torch

    if os.path.exists(path):
        os.remove(path)
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    if exporter == "torchscript":
        torch.onnx.export(model, (x,), path, opset_version=opset, dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    else:
        # Fixed batch (the importer reads it from the file); the exporter's default opset and data layout.
        torch.onnx.export(model, (x,), path, dynamo=True)


def last_line(text):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:300] if lines else "(no output)"


def run_cnnergy(args, onnx_path, dtype, in_path, out_path):
    import numpy as np

    if os.path.exists(out_path):
        os.remove(out_path)
    cmd = [args.bin, "run", onnx_path, "--device", args.device, "--batch", str(args.batch), "--input", in_path,
           "--logits-out", out_path]
    if args.device == "gpu":
        cmd += ["--dtype", dtype, "--iters", "1"]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {args.timeout:.0f} s", time.time() - t0
    if r.returncode != 0:
        return None, last_line(r.stderr or r.stdout), time.time() - t0
    if not os.path.exists(out_path):
        return None, "no --logits-out file written", time.time() - t0
    return np.fromfile(out_path, dtype="<f4"), None, time.time() - t0


def run_ort(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def check_model(args, name, exporters_dtypes, rows):
    import torch

    os.makedirs(args.workdir, exist_ok=True)
    hw = input_size(name)
    try:
        model = build_model(name, args.seed)
    except Exception as e:  # an unknown name in --extra, a torchvision without the model
        for exporter, dtypes in exporters_dtypes:
            for dt in dtypes:
                rows.append(dict(model=name, exporter=exporter, dtype=dt, rel_l2=None, ort_rel_l2=None,
                                 status="FAIL", error=f"build: {type(e).__name__}: {e}"[:300]))
        return
    torch.manual_seed(args.seed + 2)
    x = torch.randn(args.batch, 3, hw, hw)
    x_np = x.numpy().astype("<f4")
    in_path = os.path.join(args.workdir, f"{name}.in.f32")
    x_np.tofile(in_path)
    with torch.no_grad():
        if args.device == "gpu":
            ref = model.cuda()(x.cuda()).float().cpu().numpy()
        else:
            ref = model(x).float().numpy()
    model = model.cpu()
    for exporter, dtypes in exporters_dtypes:
        path = os.path.join(args.workdir, f"{name}.{exporter}.onnx")
        t0 = time.time()
        try:
            export(model, x, path, exporter, args.opset)
            export_err = None
        except Exception as e:
            export_err = f"export: {type(e).__name__}: {last_line(str(e))}"
            traceback.print_exc(file=sys.stderr)
        export_s = time.time() - t0
        ort_rel = None
        if export_err is None and not args.no_ort:
            try:
                ort_rel = rel_l2(run_ort(path, x_np), ref)
            except Exception as e:
                print(f"{name} {exporter}: onnxruntime failed: {e}", file=sys.stderr)
        for dt in dtypes:
            row = dict(model=name, exporter=exporter, dtype=dt, batch=args.batch, rel_l2=None, ort_rel_l2=ort_rel,
                       tol=TOL[dt], export_s=round(export_s, 1), status="FAIL", error=export_err)
            if export_err is None:
                out_path = os.path.join(args.workdir, f"{name}.{exporter}.{dt}.logits.f32")
                got, err, secs = run_cnnergy(args, path, dt, in_path, out_path)
                row["cnnergy_s"] = round(secs, 1)
                if err is not None:
                    row["error"] = f"cnnergy: {err}"
                elif got.size != ref.size:
                    row["error"] = f"cnnergy wrote {got.size} logits, PyTorch has {ref.size} ({list(ref.shape)})"
                else:
                    rel = rel_l2(got, ref)
                    row["rel_l2"] = rel
                    row["status"] = "pass" if rel <= TOL[dt] else "FAIL"
                    # Same top-1 class per image: a readable second signal.
                    row["top1_agree"] = float((got.reshape(ref.shape).argmax(1) == ref.argmax(1)).mean())
            rows.append(row)
            print(f"{name:20s} {exporter:11s} {dt:4s} rel L2 {fmt(row['rel_l2']):>9s} (onnxruntime "
                  f"{fmt(ort_rel)}) {row['status']} {row.get('error') or ''}", flush=True)
        # VGG-sized files: do not keep several on the device machine's disk.
        for p in (path, path + ".data"):
            if os.path.exists(p):
                os.remove(p)


def fmt(v):
    return "-" if v is None else f"{v:.2e}"


def table(rows):
    head = "| model | exporter | dtype | rel L2 vs PyTorch fp32 | tol | onnxruntime rel L2 | result |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        res = r["status"] if not r.get("error") else f"{r['status']}: {r['error']}"
        lines.append(f"| {r['model']} | {r['exporter']} | {r['dtype']} | {fmt(r['rel_l2'])} | "
                     f"{r.get('tol', TOL.get(r['dtype'], 0)):.0e} | {fmt(r['ort_rel_l2'])} | {res.replace('|', '/')} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    os.makedirs(args.outdir, exist_ok=True)
    if not os.path.exists(args.bin):
        sys.exit(f"error: {args.bin} not found (cargo build --release first)")
    dtypes, extra_dtypes = csv(args.dtypes), csv(args.extra_dtypes)
    if args.device == "cpu":  # the CPU backend computes in f32 storage / f64 accumulation only
        dtypes, extra_dtypes = ["f32"], ["f32"]
    dynamo = set(csv(args.dynamo))
    plan = {}
    for m in csv(args.models):
        plan.setdefault(m, []).append(("torchscript", dtypes))
    for m in csv(args.dynamo):
        plan.setdefault(m, []).append(("dynamo", extra_dtypes))
    for m in csv(args.extra):
        if m not in plan:
            plan[m] = [("torchscript", extra_dtypes)]
    rows = []
    t0 = time.time()
    for m, exps in plan.items():
        check_model(args, m, exps, rows)
    md = table(rows)
    device = torch.cuda.get_device_name(0) if args.device == "gpu" else "CPU (cnnergy --device cpu)"
    reference = ("PyTorch fp32 on the GPU, TF32 off; f16 runs compared with it too" if args.device == "gpu"
                 else "PyTorch fp32 on the CPU")
    meta = {"torch": torch.__version__, "device": device, "batch": args.batch,
            "seed": args.seed, "reference": reference, "torchscript_opset": args.opset,
            "seconds": round(time.time() - t0, 1), "dynamo_models": sorted(dynamo)}
    try:
        import onnx
        import onnxruntime
        import torchvision

        meta.update(onnx=onnx.__version__, onnxruntime=onnxruntime.__version__, torchvision=torchvision.__version__)
    except ImportError:
        pass
    with open(os.path.join(args.outdir, "onnx_check.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(args.outdir, "onnx_check.md"), "w") as f:
        f.write(f"ONNX import vs PyTorch ({meta['device']}, torch {meta['torch']}, batch {args.batch})\n\n{md}\n")
    print()
    print(md)
    n_fail = sum(r["status"] != "pass" for r in rows if r["model"] in csv(args.models))
    print(f"\n{len(rows)} checks in {meta['seconds']} s; {n_fail} failures among the main models")
    sys.exit(1 if n_fail else 0)


if __name__ == "__main__":
    main()
