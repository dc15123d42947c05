#!/usr/bin/env bash
# Readings of Appendix C, one seed, first 3 passes each (about 2 minutes per
# reading on one CPU core). Each writes runs/ablation-<name>/summary.json;
# collect them with: python scripts/summarize.py --collect runs/ablation-*
set -euo pipefail
cd "$(dirname "$0")/.."
run() { name=$1; shift; python train.py --seed 0 --epochs 3 --logdir "runs/ablation-$name" "$@"; }
run literal                --eta-scale 1   --hessian-every 0
run literal-h1000          --eta-scale 1   --hessian-every 1000
run eta0.3-h1000           --eta-scale 0.3 --hessian-every 1000
run eta0.1-once            --eta-scale 0.1 --hessian-every 0
run eta0.1-h1000-j1        --eta-scale 0.1 --hessian-every 1000 --j 1
run eta0.1-h1000-yd        --eta-scale 0.1 --hessian-every 1000 --loss yd
