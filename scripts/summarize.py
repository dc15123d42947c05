"""Build the results table from results/*.json (one file per training run).

    python scripts/summarize.py --collect runs/paper-seed0 ...   # copy runs' summary.json into results/
    python scripts/summarize.py                                  # print the tables, write results/SUMMARY.md
                                                                 # and the blocks between the markers in both READMEs
"""

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train import ETA_SCALE, HESSIAN_EVERY  # noqa: E402
from lenet5.loss import DEFAULT_J  # noqa: E402
from lenet5.sdlm import MU  # noqa: E402

DEFAULT_READING = (ETA_SCALE, HESSIAN_EVERY, MU, "eq9", DEFAULT_J)
RESULTS = Path(__file__).resolve().parents[1] / "results"
PAPER = {"paper": "0.95", "distort": "0.8", "seed": "1.4 (98.6% accuracy, the seed write-up)"}


def load_runs(folder="runs"):
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{folder}/*.json"))}


def reading(cfg):
    return (f"eta x {cfg['eta_scale']:g}, h_kk " + (f"every {cfg['hessian_every']} patterns" if cfg["hessian_every"] else "once per pass")
            + f", mu {cfg['mu']:g}, {cfg['loss']}" + (f" j={cfg['j']:g}" if cfg["loss"] == "eq9" else ""))


def ablation_table(runs):
    lines = ["| run | reading | test error % after pass 1 / 2 / 3 | train error % after pass 3 |", "|---|---|---|---|"]
    for name, r in sorted(runs.items(), key=lambda kv: -kv[1]["test_error_pct"]):
        errs = " / ".join(f"{p['test_error_pct']:.2f}" for p in r["passes"][:3])
        lines.append(f"| {name} | {reading(r['config'])} | {errs} | {r['passes'][2]['train_error_pct']:.2f} |")
    return "\n".join(lines)


def group_of(cfg):
    if cfg["preset"] == "seed":
        return "seed"
    if (cfg["eta_scale"], cfg["hessian_every"], cfg["mu"], cfg["loss"], cfg["j"]) != DEFAULT_READING:
        return f"paper, {reading(cfg)}"
    if cfg.get("train_size"):
        return f"paper, {cfg['train_size']} patterns"
    return "distort" if cfg["distort"] else "paper"


def command_of(cfg, seeds):
    if cfg["preset"] == "seed":
        return f"python train.py --preset seed --seeds {','.join(map(str, seeds))}"
    cmd = "python train.py"
    cmd += f" --seeds {','.join(map(str, seeds))}" if len(seeds) > 1 else f" --seed {seeds[0]}"
    if cfg.get("train_size"):
        cmd += f" --train-size {cfg['train_size']}"
    if (cfg["eta_scale"], cfg["hessian_every"]) != DEFAULT_READING[:2]:
        cmd += f" --eta-scale {cfg['eta_scale']:g} --hessian-every {cfg['hessian_every']}"
    if cfg["distort"]:
        cmd += " --distort"
    return cmd


def table(runs):
    groups = {}
    for name, r in runs.items():
        groups.setdefault(group_of(r["config"]), []).append(r)
    lines = [
        "| recipe | paper's test error % | this repo: test error % (mean ± std) | per seed | train error % | passes | wall time per run | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ["paper", "distort", "seed"] + sorted(g for g in groups if g not in ("paper", "distort", "seed"))
    for g in order:
        rs = sorted(groups.get(g, []), key=lambda r: r["config"]["seed"])
        if not rs:
            continue
        errs = [r["test_error_pct"] for r in rs]
        mean = statistics.mean(errs)
        spread = f" ± {statistics.stdev(errs):.2f}" if len(errs) > 1 else ""
        per_seed = ", ".join(f"{r['config']['seed']}: {r['test_error_pct']:.2f}" for r in rs)
        train = ", ".join(f"{r['train_error_pct']:.2f}" for r in rs)
        wall = statistics.mean(r["wall_s"] for r in rs)
        together = " (seeds trained together)" if len(rs) > 1 and rs[0]["config"].get("engine") == "fused" else ""
        lines.append(
            f"| {g} | {PAPER.get(g, '-')} | **{mean:.2f}**{spread} | {per_seed} | {train} | {rs[0]['passes'][-1]['pass']} "
            f"| {wall / 60:.1f} min, {rs[0]['device']}, {rs[0]['threads']} thread{together} | `{command_of(rs[0]['config'], [r['config']['seed'] for r in rs])}` |"
        )
    return "\n".join(lines)


def bench_table():
    lines = ["| measurement | device | patterns/s | one pass of 60,000 | target |", "|---|---|---|---|---|"]
    rows = [
        ("paper recipe, batch 1, fused engine", "paper_batch1_fused", "paper_pass_s_fused", "<= 30 s (CPU)"),
        ("... with `--compile`", "paper_batch1_fused_compiled", "paper_pass_s_fused_compiled", "<= 30 s (CPU)"),
        ("... 3 seeds together (rate per seed; the pass is all three)", "paper_batch1_fused_3_seeds", "paper_pass_s_fused_3_seeds", ""),
        ("... 3 seeds together, `--compile`", "paper_batch1_fused_3_seeds_compiled", "paper_pass_s_fused_3_seeds_compiled", ""),
        ("paper recipe, batch 1, autograd (`--engine autograd`)", "paper_batch1_autograd", "paper_pass_s_autograd", ""),
        ("seed preset, batch 64, Adam", "seed_batch64_adam", "seed_epoch_s", "<= 5 s (CPU)"),
        ("... with `--compile` (and fused Adam)", "seed_batch64_adam_compiled", "seed_epoch_s_compiled", "<= 5 s (CPU)"),
        ("... with C3 as 16 convolutions (the write-up's)", "seed_batch64_adam_c3_as_16_convs", "seed_epoch_s_c3_as_16_convs", ""),
        ("inference, batch 1000", "inference_batch1000", None, ""),
    ]
    for path in sorted(RESULTS.glob("bench-*.json")):
        b = json.loads(path.read_text())
        device = f"{b['device']}, {b['threads']} threads, torch {b['torch']}"
        for label, rate, pass_s, target in rows:
            secs = f"{b[pass_s]:.1f} s" if pass_s else f"{60000 / b[rate]:.2f} s"
            lines.append(f"| {label} | {device} | {b[rate]:,.0f} | {secs} | {target} |")
    return "\n".join(lines)


def replace_block(path, name, text):
    doc = path.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in doc:
        return
    head, rest = doc.split(begin, 1)
    path.write_text(head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--collect", nargs="+", metavar="RUN_DIR", help="copy each run's summary.json to results/runs/<dir name>.json")
    args = p.parse_args()
    if args.collect:
        for d in map(Path, args.collect):
            folder = RESULTS / ("ablations" if d.name.startswith("ablation-") else "runs")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(d / "summary.json", folder / f"{d.name}.json")
    text = table(load_runs())
    ablations = load_runs("ablations")
    if ablations:
        text += "\n\nAblations (scripts/ablate.sh, seed 0, 3 passes):\n\n" + ablation_table(ablations)
    bench = bench_table()
    (RESULTS / "SUMMARY.md").write_text("<!-- generated by scripts/summarize.py from results/ -->\n" + text + "\n\n" + bench + "\n")
    for readme in ("README.md", "README.ko.md"):
        replace_block(RESULTS.parent / readme, "results", text)
        replace_block(RESULTS.parent / readme, "bench", bench)
    print(text + "\n\n" + bench)


if __name__ == "__main__":
    main()
