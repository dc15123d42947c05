"""Evaluate a trained LeNet-5 on the 10,000 MNIST test digits.

    python evaluate.py                                  # the committed pretrained network
    python evaluate.py --checkpoint runs/paper-...      # a run directory or a .pt file
    python evaluate.py --json                           # one JSON object on stdout
    python evaluate.py --save-misclassified fig8.png    # the paper's Fig. 8

Prints the test error, the error per class and the confusion matrix
(rows: true digit, columns: predicted digit).
"""

import argparse
import json
import sys

import torch

from lenet5.checkpoint import PRETRAINED, CheckpointError, load_model
from lenet5.data import BACKGROUND, INK, DataMissing, default_data_dir, load_mnist


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(PRETRAINED), help="a .pt file or a run directory (default: the pretrained network)")
    p.add_argument("--data-dir", default=default_data_dir(), help="folder holding MNIST/raw (default: $LENET5_DATA_DIR or data/)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available (default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--save-misclassified", metavar="PNG", help="write a grid of every misclassified digit, labelled true->predicted")
    return p.parse_args(argv)


@torch.inference_mode()
def evaluate(model, x, y, batch_size=2000):
    pred = torch.cat([model.predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion.index_put_((y.cpu(), pred.cpu()), torch.ones(len(y), dtype=torch.long), accumulate=True)
    per_class = 100 * (1 - confusion.diag().float() / confusion.sum(1).float())
    n_wrong = int((pred != y).sum())
    return dict(
        test_error_pct=round(100 * n_wrong / len(y), 4),
        n_test=len(y),
        n_wrong=n_wrong,
        per_class_error_pct=[round(v, 3) for v in per_class.tolist()],
        confusion=confusion.tolist(),
    ), pred


def save_misclassified(path, x, y, pred, columns=12, scale=3):
    """Fig. 8: every misclassified digit, black on white, captioned true->predicted."""
    from PIL import Image, ImageDraw

    bad = (pred != y).nonzero().squeeze(1).cpu()
    cell_w, cell_h = 32 * scale, 32 * scale + 14
    rows = max(1, -(-len(bad) // columns))
    sheet = Image.new("L", (columns * cell_w, rows * cell_h), 255)
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(bad.tolist()):
        ink = ((x[i, 0].cpu() - BACKGROUND) / (INK - BACKGROUND)).clamp(0, 1)
        digit = Image.fromarray((255 * (1 - ink)).to(torch.uint8).numpy()).resize((32 * scale, 32 * scale), Image.NEAREST)
        r, c = divmod(k, columns)
        sheet.paste(digit, (c * cell_w, r * cell_h))
        draw.text((c * cell_w + 4, r * cell_h + 32 * scale), f"{int(y[i])}->{int(pred[i])}", fill=0)
    sheet.save(path)
    return len(bad)


def main(argv=None):
    args = parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: CUDA is not available on this machine; use --device cpu or auto", file=sys.stderr)
        return 2
    try:
        model = load_model(args.checkpoint, map_location=device)
        x, y = load_mnist(args.data_dir, train=False, device=device)
    except (CheckpointError, DataMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result, pred = evaluate(model, x, y)
    result["checkpoint"] = str(args.checkpoint)
    if args.save_misclassified:
        save_misclassified(args.save_misclassified, x, y, pred)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.checkpoint}: test error {result['test_error_pct']:.2f}% ({result['n_wrong']} of {result['n_test']})")
    print("per-class error %: " + "  ".join(f"{d}:{e:.2f}" for d, e in enumerate(result["per_class_error_pct"])))
    print("confusion (rows true, columns predicted):")
    print("      " + "".join(f"{d:>6}" for d in range(10)))
    for d, row in enumerate(result["confusion"]):
        print(f"{d:>6}" + "".join(f"{v:>6}" for v in row))
    if args.save_misclassified:
        print(f"wrote {args.save_misclassified}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
