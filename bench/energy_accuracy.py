#!/usr/bin/env python3
"""Accuracy of the replay energy attribution, from replay traces (profile with a measure phase
and a per-layer replay phase, e.g. `cnnergy profile ... --per-layer`).

Usage: python3 bench/energy_accuracy.py [--cnnergy BIN] [--compare all|first|none] TRACE...

Runs `cnnergy report TRACE --format json` (auto: replay) and `--method timeline` (the timeline
attribution of the same trace's measure phase) once per distinct trace and prints markdown:

(a) consistency per trace: the sum of the replayed layers' energy per inference vs the energy
    counter over the measure phase per measured inference, without and with the measure phase's
    idle-gap energy (the replay runs each layer back to back, with no gaps); target within +-3 %.
(b) repeatability per model (runs grouped by model, batch, dtype and replay settings; --any-settings
    ignores the settings), for groups with >= 3 runs:
    per layer with a mean GPU time >= 100 us, the coefficient of variation (sample std / mean)
    of the layer energy across runs; max and median CV; target <= 2 % for every such layer,
    the layers above it are listed.
(c) both methods side by side (--compare first: the first trace of each model; all; none):
    per layer the replay energy +- 95 % CI vs the timeline energy +- CI, and their ratio.

Exit status 0 even when a target is missed (the tables say so); 2 on usage or report errors.
"""
import argparse
import json
import statistics
import subprocess
import sys

TARGET_CONSISTENCY = 0.03
TARGET_CV = 0.02
MIN_LAYER_MS = 0.1


def report(binary, path, method):
    cmd = [binary, "report", path, "--format", "json", "--method", method]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def pct(x, signed=True):
    if x is None:
        return "n/a"
    return f"{x * 100:+.2f} %" if signed else f"{x * 100:.2f} %"


def num(x, fmt="{:.4g}"):
    return "n/a" if x is None else fmt.format(x)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def consistency(replay, timeline):
    """(measured, replay sum, gap) J per inference; the report's figures, else derived."""
    m = replay["model"]
    measured = m.get("measured_j_per_inference")
    if measured is None and m.get("counter_energy_j") is not None and m.get("inferences"):
        measured = m["counter_energy_j"] / m["inferences"]  # older report without the figure
    total = m.get("replay_sum_j_per_inference", m.get("j_per_inference"))
    gap = m.get("gap_j_per_inference")
    if gap is None:
        t = timeline["model"]
        if t.get("j_per_inference") is not None and t.get("idle_energy_share") is not None:
            gap = t["j_per_inference"] * t["idle_energy_share"]
    return measured, total, gap


def replay_settings(r):
    """The replay settings the trace header records (kernel variants `replay.*`), e.g.
    `cache=model,between=idle,context=isolated`; "-" for traces recorded before they were."""
    kv = r.get("setting", {}).get("kernel variants", "")
    parts = [p.split(".", 1)[1] for p in kv.split(",") if p.startswith("replay.")]
    return ",".join(parts) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--cnnergy", default="cnnergy", help="the cnnergy binary (default: cnnergy on PATH)")
    ap.add_argument("--compare", choices=["first", "all", "none"], default="first")
    ap.add_argument("--any-settings", action="store_true",
                    help="repeatability: group runs by model, batch and dtype only, even if their replay "
                         "settings differ (default: identical settings only)")
    a = ap.parse_args()

    cache = {}
    runs = []  # (path, replay json, timeline json)
    for path in a.traces:
        if path not in cache:
            cache[path] = (report(a.cnnergy, path, "auto"), report(a.cnnergy, path, "timeline"))
        r, t = cache[path]
        if r["model"].get("method") != "replay":
            sys.exit(f"error: {path}: not a replay trace (method {r['model'].get('method')})")
        runs.append((path, r, t))

    # (a) consistency
    print(f"## (a) Consistency: sum of replayed layers vs measured energy per inference (target +-{TARGET_CONSISTENCY:.0%})\n")
    rows = []
    for path, r, t in runs:
        m = r["model"]
        measured, total, gap = consistency(r, t)
        c = total / measured - 1 if measured and total is not None else None
        cg = (total + gap) / measured - 1 if measured and total is not None and gap is not None else None
        ok = lambda x: "n/a" if x is None else ("yes" if abs(x) <= TARGET_CONSISTENCY else "**no**")
        rows.append([f"{m['model']} b{m['batch']} {m['dtype']}", replay_settings(r), path, m.get("inferences"),
                     num(measured),
                     num(total), pct(c), ok(c), num(gap), pct(cg), ok(cg)])
    print(table(["model", "replay settings", "trace", "measured inferences", "measured J/inf", "sum replay J/inf", "replay vs measured",
                 "within", "gap J/inf", "(replay + gap) vs measured", "within"], rows))

    # (b) repeatability
    print(f"\n## (b) Repeatability across runs: CV of layer energy, layers >= {MIN_LAYER_MS * 1000:.0f} us "
          f"(target <= {TARGET_CV:.0%})\n")
    groups = {}
    for path, r, _ in runs:
        m = r["model"]
        settings = "any" if a.any_settings else replay_settings(r)
        groups.setdefault((m["model"], m["batch"], m["dtype"], settings), []).append((path, r))
    rows, over = [], []
    for (model, batch, dtype, settings), rs in groups.items():
        name = f"{model} b{batch} {dtype} ({settings})"
        if len(rs) < 3:
            rows.append([name, len(rs), "n/a", "n/a", "n/a", "needs >= 3 runs"])
            continue
        per = {}
        for _, r in rs:
            for l in r["layers"]:
                per.setdefault(l["layer_id"], []).append(l)
        cvs = []
        for lid, ls in sorted(per.items()):
            if len(ls) != len(rs):
                continue  # the layer is missing from some run (e.g. skipped replay window)
            time_ms = statistics.mean(l["time_ms"] for l in ls)
            energies = [l["energy_mj"] for l in ls]
            if time_ms < MIN_LAYER_MS or any(e is None for e in energies):
                continue
            mean = statistics.mean(energies)
            cv = statistics.stdev(energies) / mean if mean > 0 else float("nan")
            cvs.append(cv)
            if not cv <= TARGET_CV:
                over.append([name, lid, ls[0]["layer"], f"{time_ms:.3f}", f"{mean:.4g}", pct(cv, False)])
        if not cvs:
            rows.append([name, len(rs), 0, "n/a", "n/a", "no layer >= 100 us"])
            continue
        bad = sum(1 for c in cvs if not c <= TARGET_CV)
        rows.append([name, len(rs), len(cvs), pct(max(cvs), False), pct(statistics.median(cvs), False),
                     "yes" if bad == 0 else f"**no** ({bad} layers)"])
    print(table(["model", "runs", "layers >= 100 us", "max CV", "median CV", "all <= 2 %"], rows))
    if over:
        print("\nLayers over the CV target:\n")
        print(table(["model", "layer id", "layer", "time ms", "mean mJ", "CV"], over))

    # (c) side by side
    if a.compare != "none":
        seen = set()
        for path, r, t in runs:
            m = r["model"]
            key = (m["model"], m["batch"], m["dtype"])
            if a.compare == "first" and key in seen:
                continue
            seen.add(key)
            print(f"\n## (c) Replay vs timeline (measure phase), {m['model']} b{m['batch']} {m['dtype']}: {path}\n")
            tl = {l["layer_id"]: l for l in t["layers"]}
            rows = []
            sums = [0.0, 0.0]
            for l in sorted(r["layers"], key=lambda l: l["layer_id"]):
                o = tl.get(l["layer_id"])
                e, ci = l["energy_mj"], l.get("energy_ci_mj")
                te, tci = (o["energy_mj"], o.get("energy_ci_mj")) if o else (None, None)
                ratio = te / e if te is not None and e else None
                if e is not None and te is not None:
                    sums[0] += e
                    sums[1] += te
                rows.append([l["layer_id"], l["layer"], f"{l['time_ms']:.4f}", f"{num(e)} ± {num(ci, '{:.2g}')}",
                             f"{num(te)} ± {num(tci, '{:.2g}')}" if o else "n/a",
                             num(ratio, "{:.3f}")])
            rows.append(["", "**sum**", "", num(sums[0]), num(sums[1]),
                         num(sums[1] / sums[0] if sums[0] else None, "{:.3f}")])
            print(table(["id", "layer", "time ms", "replay mJ ± CI", "timeline mJ ± CI", "timeline / replay"], rows))
            tm = t["model"]
            print(f"\ntimeline run: {num(tm.get('j_per_inference'))} J/inference "
                  f"(idle gaps {pct(tm.get('idle_energy_share'), False)}, vs counter {pct(tm.get('counter_mismatch'))})")


if __name__ == "__main__":
    main()
