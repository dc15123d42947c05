"""Train LeNet-5 on MNIST with the paper's recipe (or the seed baseline).

    python train.py                          # the paper: 20 passes, batch 1, SDLM, eq. 9
    python train.py --seeds 0,1,2            # three independent runs, trained together
    python train.py --preset seed            # the baseline: Linear output, Adam, 10 epochs
    python train.py --resume runs/paper-...  # continue an interrupted run
    tensorboard --logdir runs

Each run directory holds config.json, metrics.jsonl (one line per pass),
last.pt (rewritten atomically after every pass) and summary.json.
"""

import argparse
import json
import math
import platform
import sys
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from lenet5.checkpoint import CheckpointError, load, save_atomic
from lenet5.data import DataMissing, MAX_SCALE, MAX_SHEAR, MAX_SHIFT, MAX_SQUEEZE, default_data_dir, distort, load_mnist, subset
from lenet5.fused import FusedSDLM
from lenet5.loss import DEFAULT_J, LOSSES, eq9
from lenet5.model import LeNet5
from lenet5.sdlm import MU, SDLM, gauss_newton_diagonal, paper_eta

PRESETS = {
    "paper": dict(epochs=20, batch_size=1, optimizer="sdlm", loss="eq9"),
    "seed": dict(epochs=10, batch_size=64, optimizer="adam", loss="ce"),
}
# Our reading of Appendix C (README, "How faithful is this"): the paper's eta
# schedule times ETA_SCALE, with h_kk re-estimated every HESSIAN_EVERY patterns.
ETA_SCALE = 0.1
HESSIAN_EVERY = 1000


class TrainingError(RuntimeError):
    """Bad arguments or state; the message names the problem and the fix."""


class Diverged(TrainingError):
    """The loss became NaN or infinite; last.pt holds the last good pass."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="Distortions (--distort): "
        f"translation up to +-{MAX_SHIFT:g} px on each axis, scaling by 1 +- {MAX_SCALE:g}, squeezing x by (1 - s) "
        f"and y by (1 + s) with |s| <= {MAX_SQUEEZE:g}, horizontal shear up to +-{MAX_SHEAR:g}.",
    )
    p.add_argument("--preset", choices=PRESETS, default="paper", help="paper: RBF output, eq. 9, SDLM, batch 1, 20 passes; "
                   "seed: the original write-up's Linear output, cross-entropy, Adam 1e-3, batch 64, 10 epochs (default: paper)")
    p.add_argument("--epochs", type=int, help="passes through the training set (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="patterns per update (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and distortions (default: 0)")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2: independent runs, one directory each; "
                   "with the fused engine they train together in one loop")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available (default)")
    p.add_argument("--data-dir", default=default_data_dir(), help="folder holding MNIST/raw (default: $LENET5_DATA_DIR or data/)")
    p.add_argument("--train-size", type=int, help="train on a fixed, seed-determined subset of N patterns (Fig. 6)")
    p.add_argument("--distort", action="store_true", help="present each pattern as a random affine distortion with "
                   "probability 10/11, the paper's ten distorted copies per original (ranges below)")
    p.add_argument("--logdir", help="run directory (default: runs/<preset>-<timestamp>[-seedN])")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last completed pass, with its saved config")
    p.add_argument("--engine", choices=("auto", "fused", "autograd"), default="auto", help="fused: hand-written batch-1 SDLM "
                   "steps, several seeds at once (paper preset, batch 1); autograd: LeNet5 + torch.autograd, the readable "
                   "reference; auto: fused where it applies (default)")
    p.add_argument("--compile", action="store_true", help="speed over bit-for-bit reproducibility of the default path: "
                   "torch.compile the fused engine's step (paper preset) or the model with a fused Adam (seed preset)")
    g = p.add_argument_group("the recipe (paper preset)")
    g.add_argument("--loss", choices=LOSSES, help="eq9 (paper), yd (plain y_D) or ce (cross-entropy, Linear output)")
    g.add_argument("--j", type=float, default=DEFAULT_J, help=f"the constant j of eq. 9 (default: {DEFAULT_J})")
    g.add_argument("--mu", type=float, default=MU, help=f"SDLM's mu (default: the paper's {MU})")
    g.add_argument("--eta-scale", type=float, default=ETA_SCALE, help="multiplies the paper's eta schedule; "
                   f"1 is the literal text, which collapses (default: {ETA_SCALE})")
    g.add_argument("--hessian-every", type=int, default=HESSIAN_EVERY, help="re-estimate h_kk every N patterns; "
                   f"0 means once per pass, as the paper's text says (default: {HESSIAN_EVERY})")
    g.add_argument("--hessian-samples", type=int, default=500, help="patterns averaged per h_kk estimate (default: 500)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, seed preset (default: 1e-3)")
    return p


def pick_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: CUDA is not available on this machine; use --device cpu or auto")
    return name


def make_config(args):
    preset = PRESETS[args.preset]
    cfg = dict(
        preset=args.preset,
        epochs=preset["epochs"] if args.epochs is None else args.epochs,
        batch_size=preset["batch_size"] if args.batch_size is None else args.batch_size,
        optimizer=preset["optimizer"],
        loss=args.loss or preset["loss"],
        train_size=args.train_size,
        distort=args.distort,
        rbf_trainable=False,
        data_dir=args.data_dir,
    )
    if cfg["optimizer"] == "sdlm":
        cfg.update(j=args.j, mu=args.mu, eta_scale=args.eta_scale, eta_schedule="paper",
                   hessian_every=args.hessian_every, hessian_samples=args.hessian_samples)
    else:
        cfg.update(lr=args.lr)
    if (cfg["loss"] == "ce") != (args.preset == "seed"):
        raise TrainingError(f"--loss {cfg['loss']} does not fit the {args.preset} preset's output: "
                            "eq9 and yd need the RBF output (paper), ce the Linear output (seed)")
    for key in ("epochs", "batch_size", "hessian_samples", "train_size"):
        if cfg.get(key) is not None and cfg[key] < 1:
            raise TrainingError(f"--{key.replace('_', '-')} must be at least 1, got {cfg[key]}")
    if cfg.get("hessian_every", 0) < 0:
        raise TrainingError(f"--hessian-every must be 0 (once per pass) or more, got {cfg['hessian_every']}")
    engine = args.engine
    fused_ok = cfg["optimizer"] == "sdlm" and cfg["batch_size"] == 1 and cfg["loss"] == "eq9"
    if engine == "fused" and not fused_ok:
        raise TrainingError("--engine fused trains the paper preset at batch size 1 with eq. 9 only; use --engine autograd")
    cfg["engine"] = "fused" if engine == "auto" and fused_ok else ("autograd" if engine == "auto" else engine)
    if args.compile and cfg["engine"] == "autograd" and cfg["optimizer"] == "sdlm":
        raise TrainingError("--compile speeds up the fused engine and the seed preset, not --engine autograd")
    return cfg


class Run:
    """One seed's model, optimizer, run directory and logs."""

    def __init__(self, cfg, seed, run_dir, device, start_pass=0, ckpt=None, compile=False):
        self.cfg, self.seed, self.dir, self.device = cfg, seed, Path(run_dir), device
        torch.manual_seed(seed)
        self.model = LeNet5(cfg["preset"], cfg["rbf_trainable"]).to(device)
        self.forward = torch.compile(self.model) if compile and cfg["optimizer"] == "adam" else self.model
        if cfg["optimizer"] == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg["lr"], fused=compile or None)
        else:
            self.opt = SDLM(self.model.parameters(), mu=cfg["mu"])
        self.start_pass, self.wall = start_pass, 0.0
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            if ckpt.get("optimizer"):
                self.opt.load_state_dict(ckpt["optimizer"])
            self.wall = ckpt["wall_s"]
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(dict(cfg, seed=seed), indent=2) + "\n")
        self.writer = SummaryWriter(str(self.dir))
        if ckpt is None:
            (self.dir / "metrics.jsonl").write_text("")
            if cfg["preset"] == "paper":
                centres = self.model.output.centres.detach().view(10, 1, 12, 7)
                self.writer.add_images("rbf_centres", (centres + 1) / 2)

    def pass_generator(self, pass_number):
        """Shuffling, h_kk samples and distortions of one pass depend only on
        (seed, pass), so a resumed run draws what an uninterrupted one would."""
        return torch.Generator().manual_seed(self.seed * 100_003 + pass_number)

    def eta(self, pass_number):
        return paper_eta(pass_number) * self.cfg["eta_scale"]


def loss_fn(cfg):
    return partial(eq9, j=cfg["j"]) if cfg["loss"] == "eq9" else LOSSES[cfg["loss"]]


def gather(x_train, y_train, idx, cfg, gen):
    """The patterns at idx, distorted (with probability 10/11) if asked."""
    x, y = x_train[idx], y_train[idx]
    if cfg["distort"]:
        flat = x.reshape(-1, 1, 32, 32)
        keep = (torch.rand(flat.shape[0], generator=gen) < 1 / 11).to(flat.device)
        flat = torch.where(keep[:, None, None, None], flat, distort(flat, gen))
        x = flat.view(x.shape)
    return x, y


def gather_runs(x_train, y_train, idx, cfg, gens):
    """``gather`` for each run's row of idx (runs, k), each with its own generator,
    so a run's distortions do not depend on which runs train beside it."""
    xs, ys = zip(*(gather(x_train, y_train, row, cfg, g) for row, g in zip(idx, gens)))
    return torch.stack(xs), torch.stack(ys)


def check_finite(loss_sum, runs, pass_number, done):
    bad = [r for r, s in zip(runs, loss_sum.tolist()) if not math.isfinite(s)]
    if bad:
        names = ", ".join(str(r.dir) for r in bad)
        raise Diverged(f"the loss became {loss_sum.tolist()} in pass {pass_number} after {done} patterns ({names}); "
                            "training stopped. last.pt still holds the last completed pass; "
                            "a smaller --eta-scale or a larger --mu usually fixes it")


def train_pass_sdlm(runs, pass_number, x_train, y_train, bar, engine=None):
    """One pass of batch-1 (or mini-batch) SDLM for every run; ``engine`` is
    the FusedSDLM holding the runs' weights, or None for autograd."""
    cfg = runs[0].cfg
    n = x_train.shape[0]
    every = cfg["hessian_every"] or n
    gens = [r.pass_generator(pass_number) for r in runs]
    orders = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(x_train.device)  # (runs, n)
    fused = engine is not None
    if fused:
        engine.reset_counters()
    else:
        for r in runs:
            for group in r.opt.param_groups:
                group["lr"] = r.eta(pass_number)
    compute_loss = loss_fn(cfg)
    loss_sum = torch.zeros(len(runs), device=x_train.device)
    wrong = torch.zeros(len(runs), dtype=torch.long, device=x_train.device)
    for start in range(0, n, every):
        stop = min(start + every, n)
        # h_kk from the next hessian_samples patterns each run is about to see.
        h_idx = orders[:, torch.arange(start, start + cfg["hessian_samples"]) % n]
        hx, _ = gather_runs(x_train, y_train, h_idx, cfg, gens)
        if fused:
            engine.estimate_step_sizes(hx, [r.eta(pass_number) for r in runs], cfg["mu"])
            cx, cy = gather_runs(x_train, y_train, orders[:, start:stop], cfg, gens)
            for k in range(stop - start):
                engine.step(cx[:, k], cy[:, k])
            loss_sum, wrong = engine.loss_sum, engine.wrong
        else:
            for i, r in enumerate(runs):
                r.opt.set_hessian(gauss_newton_diagonal(r.model, hx[i]))
                for b in range(start, stop, cfg["batch_size"]):
                    x, y = gather(x_train, y_train, orders[i, b : min(b + cfg["batch_size"], stop)], cfg, gens[i])
                    out = r.model(x)
                    loss = compute_loss(out, y)
                    r.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    r.opt.step()
                    loss_sum[i] += loss.detach() * len(y)
                    wrong[i] += (out.detach().argmin(1) != y).sum()
        check_finite(loss_sum, runs, pass_number, stop)
        bar.update(stop - start)
        bar.set_postfix(loss=f"{loss_sum.mean().item() / stop:.4f}", err=f"{100 * wrong.float().mean().item() / stop:.2f}%")
    if fused:
        engine.sync_to_models()
    return loss_sum / n, 100 * wrong.float() / n


def train_pass_adam(runs, pass_number, x_train, y_train, bar, engine=None):
    n = x_train.shape[0]
    compute_loss = loss_fn(runs[0].cfg)
    losses, errors = [], []
    for r in runs:
        gen = r.pass_generator(pass_number)
        loss_sum = torch.zeros((), device=x_train.device)
        wrong = torch.zeros((), dtype=torch.long, device=x_train.device)
        for step, idx in enumerate(torch.randperm(n, generator=gen).to(x_train.device).split(r.cfg["batch_size"])):
            x, y = gather(x_train, y_train, idx, r.cfg, gen)
            out = r.forward(x)
            loss = compute_loss(out, y)
            r.opt.zero_grad(set_to_none=True)
            loss.backward()
            r.opt.step()
            loss_sum += loss.detach() * len(y)
            wrong += (out.detach().argmax(1) != y).sum()
            bar.update(len(y))
            if step % 100 == 99:
                check_finite(loss_sum[None], [r], pass_number, step)
                bar.set_postfix(loss=f"{loss_sum.item() / bar.n:.4f}")
        check_finite(loss_sum[None], [r], pass_number, n)
        losses.append(loss_sum / n)
        errors.append(100 * wrong.float() / n)
    return torch.stack(losses), torch.stack(errors)


@torch.inference_mode()
def error_pct(model, x, y, batch_size=2000):
    model.eval()
    wrong = sum((model.predict(x[i : i + batch_size]) != y[i : i + batch_size]).sum() for i in range(0, len(x), batch_size))
    model.train()
    return 100 * float(wrong) / len(x)


@torch.inference_mode()
def misclassified_grid(model, x, y, limit=64):
    pred = model.predict(x)
    bad = (pred != y).nonzero().squeeze(1)[:limit]
    return (x[bad] + 0.1) / 1.275  # back to [0, 1] for the image


def main(argv=None):
    args = parse_args().parse_args(argv)
    try:
        return train(args)
    except (TrainingError, DataMissing, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3 if isinstance(e, Diverged) else 2


def train(args):
    device = pick_device(args.device)
    started = time.strftime("%Y%m%d-%H%M%S")
    if args.resume:
        ckpt = load(args.resume)
        cfg = dict(ckpt["config"], data_dir=args.data_dir)
        seeds, dirs = [ckpt["seed"]], [Path(args.resume)]
        start_pass = ckpt["pass"]
        if start_pass >= cfg["epochs"]:
            raise TrainingError(f"{args.resume} already finished its {cfg['epochs']} passes; nothing to resume")
        ckpts = [ckpt]
    else:
        cfg = make_config(args)
        try:
            seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
        except ValueError:
            raise TrainingError(f"--seeds takes comma-separated integers such as 0,1,2, got {args.seeds!r}") from None
        base = Path(args.logdir) if args.logdir else Path("runs") / f"{cfg['preset']}-{started}"
        dirs = [base if len(seeds) == 1 else base.parent / f"{base.name}-seed{s}" for s in seeds]
        start_pass, ckpts = 0, [None] * len(seeds)

    x_train, y_train = load_mnist(cfg["data_dir"], train=True, device=device)
    x_test, y_test = load_mnist(cfg["data_dir"], train=False, device=device)
    # With several seeds, the first one picks the subset: all see the same patterns.
    if cfg["train_size"]:
        try:
            idx = subset(cfg["train_size"], len(x_train), seeds[0]).to(device)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        x_train, y_train = x_train[idx], y_train[idx]

    runs = [Run(cfg, s, d, device, start_pass, c, args.compile) for s, d, c in zip(seeds, dirs, ckpts)]
    together = cfg["engine"] == "fused"
    train_pass = train_pass_sdlm if cfg["optimizer"] == "sdlm" else train_pass_adam
    groups = [runs] if together else [[r] for r in runs]
    for group in groups:
        engine = FusedSDLM([r.model for r in group], cfg["j"], compile=args.compile) if together else None
        for pass_number in range(start_pass + 1, cfg["epochs"] + 1):
            t0 = time.perf_counter()
            with tqdm(total=len(x_train), desc=f"pass {pass_number}/{cfg['epochs']}", unit="pat", leave=False, file=sys.stderr) as bar:
                loss, running_err = train_pass(group, pass_number, x_train, y_train, bar, engine)
            dt = time.perf_counter() - t0  # runs trained together share it
            for i, r in enumerate(group):
                r.wall += dt
                log_pass(r, pass_number, loss[i].item(), running_err[i].item(), x_train, y_train, x_test, y_test)
        for r in group:
            finish(r, device)
    return 0


def log_pass(r, pass_number, loss, running_err, x_train, y_train, x_test, y_test):
    t0 = time.perf_counter()
    test_err = error_pct(r.model, x_test, y_test)
    train_err = error_pct(r.model, x_train, y_train)
    row = dict(pass_=pass_number, train_loss=loss, train_error_running_pct=running_err, train_error_pct=train_err,
               test_error_pct=test_err)
    row = {k.rstrip("_"): v for k, v in row.items()}
    r.wall += time.perf_counter() - t0
    row["wall_s"] = round(r.wall, 2)
    if r.cfg["optimizer"] == "sdlm":
        row["eta"] = r.eta(pass_number)
    w = r.writer
    w.add_scalar("loss/train", loss, pass_number)
    w.add_scalar("error_pct/train_running", running_err, pass_number)
    w.add_scalar("error_pct/train", train_err, pass_number)
    w.add_scalar("error_pct/test", test_err, pass_number)
    if "eta" in row:
        w.add_scalar("step/eta", row["eta"], pass_number)
    w.add_images("test/misclassified", misclassified_grid(r.model, x_test, y_test), pass_number)
    w.flush()
    with open(r.dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    save_atomic(dict(model=r.model.state_dict(), optimizer=r.opt.state_dict() if r.cfg["optimizer"] == "adam" else None,
                     config=r.cfg, seed=r.seed, **{"pass": pass_number}, wall_s=r.wall, test_error_pct=test_err),
                r.dir / "last.pt")
    tqdm.write(f"{r.dir.name} pass {pass_number}: loss {loss:.4f}, train error {train_err:.2f}% "
               f"(running {running_err:.2f}%), test error {test_err:.2f}%", file=sys.stderr)


def finish(r, device):
    rows = [json.loads(line) for line in (r.dir / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    summary = dict(config=dict(r.cfg, seed=r.seed), test_error_pct=last["test_error_pct"], train_error_pct=last["train_error_pct"],
                   passes=rows, wall_s=round(r.wall, 1), device=device if device == "cpu" else torch.cuda.get_device_name(),
                   torch=torch.__version__, python=platform.python_version(), threads=torch.get_num_threads(),
                   date=time.strftime("%Y-%m-%d"))
    (r.dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    r.writer.add_hparams({k: v for k, v in summary["config"].items() if isinstance(v, (int, float, str, bool))},
                         {"hparam/test_error_pct": last["test_error_pct"]}, run_name=".")
    r.writer.close()
    print(f"{r.dir}: test error {last['test_error_pct']:.2f}% after {last['pass']} passes, "
          f"wall {r.wall:.0f} s on {summary['device']}")


if __name__ == "__main__":
    sys.exit(main())
