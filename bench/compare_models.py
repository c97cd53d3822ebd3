#!/usr/bin/env python3
"""Joins cnnergy's and PyTorch's whole-model timings into a markdown table with the targets.

Usage: python3 bench/compare_models.py CNNERGY_DIR TORCH.json OUT.md

CNNERGY_DIR holds what bench/run_models.sh writes: MODEL.DTYPE.bBATCH.MODE.json (the
`cnnergy run --json` summary; MODE graphs or nographs) or, for a failed setting, .err (its
last lines). TORCH.json is bench/torch_models.py's output.

Per (model, dtype, batch): cnnergy images/s with and without CUDA graphs, PyTorch's, and the
ratio of cnnergy's best mode to PyTorch. Targets: batch 1, every model and dtype, >= 2x;
batch 128 fp16, ResNet-50 / VGG-16 / MobileNetV2, >= 0.8x. Also writes OUT.json (the joined
rows and the target verdicts). Prints the table.
"""
import json
import os
import re
import sys

NAME = re.compile(r"^(?P<model>.+)\.(?P<dtype>f16|tf32|f32)\.b(?P<batch>\d+)\.(?P<mode>graphs|nographs)\.(?P<ext>json|err)$")
MODELS = ["alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v2", "squeezenet1_0"]
TARGETS = [
    # (predicate, minimum ratio, label)
    (lambda m, d, b: b == 1, 2.0, "batch 1: >= 2x"),
    (lambda m, d, b: b == 128 and d == "f16" and m in ("resnet50", "vgg16", "mobilenet_v2"), 0.8,
     "batch 128 fp16: >= 0.8x"),
]


def err_line(path):
    """The line that says why: a panic's message and location, else the last `error:` line, else the last."""
    with open(path, errors="replace") as f:
        lines = [l.strip() for l in f if l.strip()]
    lines = [l for l in lines if not re.match(r"^exit \d+$", l) and not l.startswith("note: run with")]
    for i, l in enumerate(lines):
        if "panicked at" in l:
            msg = lines[i + 1] if i + 1 < len(lines) else ""
            return f"panic: {msg} ({l.split('panicked at', 1)[1].strip().rstrip(':')})"[:200]
    errors = [l for l in lines if l.startswith("error")]
    line = errors[-1] if errors else lines[-1] if lines else "failed (no message)"
    return line[:200]


def load_cnnergy(d):
    """{(model, dtype, batch): {mode: summary dict or {'error': line}}}."""
    out = {}
    for f in sorted(os.listdir(d)):
        m = NAME.match(f)
        if not m:
            continue
        key = (m["model"], m["dtype"], int(m["batch"]))
        slot = out.setdefault(key, {})
        path = os.path.join(d, f)
        if m["ext"] == "json":
            try:
                with open(path) as fh:
                    slot[m["mode"]] = json.load(fh)
            except (OSError, ValueError) as e:
                slot[m["mode"]] = {"error": f"unreadable JSON: {e}"[:200]}
        elif m["mode"] not in slot or "error" in slot[m["mode"]]:
            slot[m["mode"]] = {"error": err_line(path)}
    return out


def load_torch(path):
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        doc = json.load(f)
    rows = doc.get("rows", doc if isinstance(doc, list) else [])
    return {(r["model"], r["dtype"], int(r["batch"])): r for r in rows}, doc.get("meta", {})


def ips(r):
    if r and "error" not in r and r.get("status", "ok") == "ok" and r.get("images_per_s"):
        return float(r["images_per_s"])
    return None


def mib(b):
    return "-" if b is None else f"{b / 1048576:.0f}"


def num(v, f="{:.1f}"):
    return "-" if v is None else f.format(v)


def join(cn, th):
    order = {m: i for i, m in enumerate(MODELS)}
    dorder = {"f32": 0, "tf32": 1, "f16": 2}
    keys = sorted(set(cn) | set(th), key=lambda k: (order.get(k[0], len(order)), k[0], dorder.get(k[1], 3), k[2]))
    rows = []
    for k in keys:
        model, dtype, batch = k
        modes = cn.get(k, {})
        g, ng, t = modes.get("graphs"), modes.get("nographs"), th.get(k)
        best_mode, best = None, None
        for mode, r in (("graphs", g), ("nographs", ng)):
            v = ips(r)
            if v is not None and (best is None or v > best):
                best_mode, best = mode, v
        tv = ips(t)
        ratio = best / tv if best is not None and tv else None
        errors = []
        for mode, r in (("graphs", g), ("nographs", ng)):
            if r and "error" in r:
                errors.append(f"cnnergy {mode}: {r['error']}")
        if t and t.get("status") not in (None, "ok"):
            errors.append(f"torch: {t.get('error', 'FAIL')}")
        if not modes:
            errors.append("cnnergy: not run")
        if not t:
            errors.append("torch: not run")
        target = next(((lo, label) for pred, lo, label in TARGETS if pred(model, dtype, batch)), None)
        verdict = None
        if target:
            verdict = "no data" if ratio is None else "met" if ratio >= target[0] else "MISSED"
        br = (g if best_mode == "graphs" else ng) or {}
        rows.append(dict(
            model=model, dtype=dtype, batch=batch,
            cnnergy_graphs_ips=ips(g), cnnergy_nographs_ips=ips(ng), torch_ips=tv, ratio=ratio, best_mode=best_mode,
            cnnergy_median_ms=br.get("latency_ms_median"), cnnergy_p95_ms=br.get("latency_ms_p95"),
            torch_median_ms=(t or {}).get("latency_ms_median"), torch_p95_ms=(t or {}).get("latency_ms_p95"),
            cnnergy_act_bytes=br.get("peak_activation_bytes"), cnnergy_weight_bytes=br.get("weight_bytes"),
            torch_peak_bytes=(t or {}).get("peak_bytes"), target=target[1] if target else None,
            target_min=target[0] if target else None, verdict=verdict, errors=errors))
    return rows


def markdown(rows, meta):
    out = []
    if meta:
        out.append(f"PyTorch {meta.get('torch', '?')} (cuDNN {meta.get('cudnn', '?')}) on {meta.get('device', '?')}: "
                   "eager, cudnn.benchmark, fp32 NCHW with TF32 convs, fp16 channels_last.\n")
    out.append("| model | dtype | batch | cnnergy img/s (graphs) | cnnergy img/s (no graphs) | PyTorch img/s | ratio "
               "| cnnergy median / p95 ms | PyTorch median / p95 ms | cnnergy act + weights MiB | PyTorch peak MiB "
               "| target |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tgt = "" if not r["target"] else f"{r['target']}: **{r['verdict']}**"
        if r["errors"]:
            tgt = (tgt + "; " if tgt else "") + "FAIL: " + "; ".join(r["errors"]).replace("|", "/")
        mem = ("-" if r["cnnergy_act_bytes"] is None
               else f"{mib(r['cnnergy_act_bytes'])} + {mib(r['cnnergy_weight_bytes'])}")
        out.append(
            f"| {r['model']} | {r['dtype']} | {r['batch']} | {num(r['cnnergy_graphs_ips'])} | "
            f"{num(r['cnnergy_nographs_ips'])} | {num(r['torch_ips'])} | {num(r['ratio'], '{:.2f}x')} | "
            f"{num(r['cnnergy_median_ms'], '{:.3f}')} / {num(r['cnnergy_p95_ms'], '{:.3f}')} | "
            f"{num(r['torch_median_ms'], '{:.3f}')} / {num(r['torch_p95_ms'], '{:.3f}')} | {mem} | "
            f"{mib(r['torch_peak_bytes'])} | {tgt} |")
    judged = [r for r in rows if r["target"]]
    met = [r for r in judged if r["verdict"] == "met"]
    out.append("")
    out.append(f"Targets met: {len(met)} of {len(judged)}.")
    for r in judged:
        if r["verdict"] != "met":
            out.append(f"- missed: {r['model']} {r['dtype']} batch {r['batch']} ({r['target']}): ratio "
                       f"{num(r['ratio'], '{:.2f}x')}")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    cn_dir, torch_json, out_md = sys.argv[1:]
    cn = load_cnnergy(cn_dir) if os.path.isdir(cn_dir) else {}
    th, meta = load_torch(torch_json)
    rows = join(cn, th)
    md = markdown(rows, meta)
    with open(out_md, "w") as f:
        f.write(md)
    with open(os.path.splitext(out_md)[0] + ".json", "w") as f:
        json.dump({"torch_meta": meta, "rows": rows}, f, indent=1)
    print(md)


if __name__ == "__main__":
    main()
