"""The GPU check's record: the goals it judges and its JSON + Markdown files (see gpu_check.py).

``data`` is ``{"meta": {...}, "parts": {"tests"|"op"|"train"|"infer": {"status", "seconds", ...}}}``;
:func:`write` adds ``"goals"`` and writes ``gpu_check.json`` and ``gpu_check.md`` atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

DGS_CASE, GS_CASE = "dgs fwd+bwd (fast kernel)", "grid_sample fwd+bwd (value)"
DOUBLE_CASE = "grid_sample double bwd (autograd mode)"
AUTOGRAD_TEST = "cuda-autograd"
"""The id fragment of the test comparing autograd mode on CUDA with autograd on CPU."""


def _ok(part: dict) -> bool:
    return part.get("status") == "ok"


def _op_goals(op: dict) -> list[dict]:
    cases = op.get("cases", {})
    out = []
    if DGS_CASE in cases and GS_CASE in cases:
        ratio = cases[DGS_CASE]["median_ms"] / cases[GS_CASE]["median_ms"]
        out.append({"goal": "DGS fwd+bwd ≤ 1.3× grid_sample fwd+bwd", "measured": f"{ratio:.2f}×", "met": ratio <= 1.3})
    bw = op.get("bandwidth", {})
    if "forward" in bw:
        fr = [bw[k]["fraction"] for k in ("forward", "backward")]
        measured = ("peak unknown (pass --peak-gbs)" if None in fr else
                    f"forward {100 * fr[0]:.0f} %, backward {100 * fr[1]:.0f} % of {bw['peak_gbs']:.0f} GB/s")
        out.append({"goal": "DGS kernels ≥ 60 % of the device's memory bandwidth", "measured": measured,
                    "met": None if None in fr else min(fr) >= 0.6})
    return out


def _train_goal(train: dict) -> list[dict]:
    modes = train.get("modes", {})
    if not all("min_ms" in modes.get(m, {}) for m in ("nograd", "dgs", "autograd")):
        return []
    base = modes["nograd"]["min_ms"]
    dgs, auto = modes["dgs"]["min_ms"] - base, modes["autograd"]["min_ms"] - base
    measured = f"{dgs:.1f} ms vs {auto:.1f} ms over nograd"
    if auto <= 0:  # timing noise larger than the gradient term: no ratio to judge
        return [{"goal": "dgs gradient-term overhead ≤ autograd's", "met": None, "measured": measured}]
    return [{"goal": "dgs gradient-term overhead ≤ autograd's", "met": dgs / auto <= 1.0,
             "measured": f"{measured} ({dgs / auto:.2f})"}]


def _autograd_finding(parts: dict) -> dict | None:
    """Does grid_sample's double backward (the autograd mode) work on this device? From every part."""
    seen = []
    for t in parts["tests"].get("tests", []):
        if AUTOGRAD_TEST in t["id"] and t["outcome"] != "skipped":
            seen.append(("test", t["outcome"] == "passed", t["message"]))
    if _ok(parts["op"]):
        failed = parts["op"].get("failed", {})
        seen.append(("op", DOUBLE_CASE not in failed, failed.get(DOUBLE_CASE, "")))
    mode = parts["train"].get("modes", {}).get("autograd")
    if mode is not None:
        seen.append(("train", "error" not in mode, mode.get("error", "")))
    if not seen:
        return None
    works = all(ok for _, ok, _ in seen)
    why = "; ".join(f"{where}: {msg}" for where, ok, msg in seen if not ok)
    return {"goal": "autograd mode (grid_sample double backward) runs", "met": works,
            "measured": "yes (" + ", ".join(w for w, _, _ in seen) + ")" if works else f"no: {why}"[:300]}


def goals(parts: dict) -> list[dict]:
    """Each goal of the check: what was measured and whether it is met (None: cannot tell)."""
    found = []
    tests = parts["tests"]
    if "counts" in tests:
        c = tests["counts"]
        ran = c["passed"] + c["failed"] + c["error"]
        found.append({"goal": "CUDA tests pass", "met": None if ran == 0 else c["failed"] + c["error"] == 0,
                      "measured": f"{c['passed']} passed, {c['failed']} failed, {c['error']} errors, "
                                  f"{c['skipped']} skipped"})
    if _ok(parts["op"]):
        found += _op_goals(parts["op"])
    if _ok(parts["train"]):
        found += _train_goal(parts["train"])
    finding = _autograd_finding(parts)
    return found + ([finding] if finding else [])


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]


def _fmt(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _params(model: dict) -> str:
    n = model["parameters"]
    return f"{n / 1e6:.1f} M parameters" if n >= 100_000 else f"{n:,} parameters"


def _tests_md(part: dict) -> list[str]:
    rows = [[t["id"], t["outcome"], t["message"]] for t in part.get("tests", [])]
    return _table(["test", "outcome", "message"], rows) if rows else []


def _op_md(part: dict) -> list[str]:
    base = part["cases"].get(GS_CASE, {}).get("median_ms")
    rows = [[name, _fmt(c["median_ms"], 3), _fmt(c["min_ms"], 3), _fmt(c["median_ms"] / base if base else None, 2)]
            for name, c in part["cases"].items()]
    rows += [[name, "failed: " + msg, "", ""] for name, msg in part["failed"].items()]
    bw = part["bandwidth"]
    shape = " ".join(f"{k}={v}" for k, v in part["shape"].items())
    lines = [f"Shape {shape}, float32, median/min of {part['runs']} runs.", ""]
    lines += _table(["case", "median ms", "min ms", "× grid_sample"], rows) + [""]
    peak = "unknown" if bw["peak_gbs"] is None else f"{bw['peak_gbs']:.0f} GB/s from {bw['peak_source']}"
    lines.append(f"Bandwidth of the DGS op alone ({bw['device']}; peak {peak}):")
    lines.append("")
    return lines + _table(["DGS op", "ms", "GB/s", "% of peak"],
                          [[k, _fmt(bw[k]["ms"], 3), _fmt(bw[k]["gbs"]),
                            _fmt(None if bw[k]["fraction"] is None else 100 * bw[k]["fraction"], 0)]
                           for k in ("forward", "backward")])


def _train_md(part: dict) -> list[str]:
    base = part["modes"].get("nograd", {}).get("min_ms")
    rows = []
    for mode, r in part["modes"].items():
        if "error" in r:
            rows.append([mode, "error: " + r["error"], "", "", "", "", ""])
        else:
            over = r["min_ms"] - base if base is not None else None
            rows.append([mode, _fmt(r["min_ms"]), _fmt(r["median_ms"]), _fmt(over), _fmt(r["peak_mib"], 0),
                         f"{r['loss']:.4g}", "off" if r["amp"] == "None" else r["amp"]])
    m = part["model"]
    lines = [f"Batch {part['batch']}, image {part['image'][0]}×{part['image'][1]}, points {part['points'][0]}+"
             f"{part['points'][1]}, model {_params(m)}; {part['steps']} timed steps "
             f"after {part['warmup']} warm-up.", ""]
    return lines + _table(["mode", "min ms", "median ms", "overhead ms", "peak MiB", "loss", "autocast"], rows)


def _infer_md(part: dict) -> list[str]:
    rows = [[v["grid"], "bf16" if v["amp"] else "fp32", _fmt(v["min_s"], 3), _fmt(v["median_s"], 3),
             v["queries"], v["dense"], v["mismatches"], _fmt(v["peak_mib"], 0)] for v in part["variants"]]
    lines = [f"{part['resolution']}³ grid, image {part['image'][0]}×{part['image'][1]}, model "
             f"{_params(part['model'])}, weights {part['weights']}; "
             f"min/median of {part['repeats']}.", ""]
    return lines + _table(["grid", "autocast", "min s", "median s", "queries", "dense", "mismatches", "peak MiB"], rows)


SECTIONS = {"tests": ("1. CUDA tests (pytest -m cuda)", _tests_md), "op": ("2a. DGS op vs grid_sample", _op_md),
            "train": ("2b. One training step per gradient mode", _train_md),
            "infer": ("2c. Inference of the evaluation grid", _infer_md)}


def markdown(data: dict) -> str:
    """The record as Markdown: header, goals, then one section per part."""
    meta = data["meta"]
    lines = [f"# GPU check: {meta['device']}, {meta['date']}", ""]
    if meta["mode"] == "cpu-smoke":
        lines += ["**CPU smoke run**: tiny sizes on CPU, to exercise the code paths; no figure below is a GPU "
                  "figure.", ""]
    lines += [f"`{meta['command']}`: torch {meta['torch']}, CUDA {meta['cuda']}, triton {meta['triton']}, "
              f"Python {meta['python']}, code {meta['code_version']}.", "", "## Goals", ""]
    lines += _table(["goal", "measured", "met"],
                    [[g["goal"], g["measured"], {True: "yes", False: "**no**", None: "?"}[g["met"]]]
                     for g in data.get("goals", goals(data["parts"]))])
    for key, (title, render) in SECTIONS.items():
        part = data["parts"][key]
        took = f", {part['seconds']} s" if "seconds" in part else ""
        lines += ["", f"## {title}", "", f"Status: {part['status']}{took}"]
        if "error" in part:
            lines += ["", "```", part["error"].strip(), "```"]
        elif part["status"] in ("ok", "failed"):
            lines += [""] + render(part)
    return "\n".join(lines) + "\n"


def write(out: Path, data: dict) -> None:
    """``out/gpu_check.json`` (with the goals) and ``out/gpu_check.md``, each written atomically."""
    from pipeline.atomic import write_text_atomic

    data["goals"] = goals(data["parts"])
    write_text_atomic(out / "gpu_check.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(out / "gpu_check.md", markdown(data))
