"""train.py and evaluate.py end to end, on small subsets of the real MNIST."""

import json
import os

import pytest
import torch

import evaluate
import train


def run_train(tmp_path, data_dir, *extra, name="run"):
    logdir = tmp_path / name
    rc = train.main(["--data-dir", data_dir, "--logdir", str(logdir), *extra])
    return rc, logdir


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_paper_preset_learns_from_2000_patterns_in_two_passes(tmp_path, data_dir):
    rc, run = run_train(tmp_path, data_dir, "--train-size", "2000", "--epochs", "2")
    assert rc == 0
    rows = metrics(run)
    assert [r["pass"] for r in rows] == [1, 2]
    assert rows[-1]["test_error_pct"] < 12.0  # 7.3% measured; chance is 90%
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["engine"] == "fused" and summary["config"]["j"] == 0.1
    assert {"config.json", "last.pt"} <= set(os.listdir(run))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run))


def test_seed_preset_learns_from_2000_patterns_in_two_epochs(tmp_path, data_dir):
    rc, run = run_train(tmp_path, data_dir, "--preset", "seed", "--train-size", "2000", "--epochs", "2")
    assert rc == 0
    assert metrics(run)[-1]["test_error_pct"] < 15.0


def test_fused_and_autograd_engines_train_the_same_network(tmp_path, data_dir):
    common = ["--train-size", "300", "--epochs", "1", "--hessian-every", "100", "--hessian-samples", "50"]
    runs = [run_train(tmp_path, data_dir, *common, "--engine", e, name=e)[1] for e in ("fused", "autograd")]
    fused, auto = (torch.load(r / "last.pt", weights_only=True)["model"] for r in runs)
    for k in fused:
        assert torch.allclose(fused[k], auto[k], rtol=1e-3, atol=1e-5), k


@pytest.mark.parametrize("preset", ["paper", "seed"])
def test_resume_equals_an_uninterrupted_run(tmp_path, data_dir, preset):
    common = ["--preset", preset, "--train-size", "600", "--seed", "3"]
    assert run_train(tmp_path, data_dir, *common, "--epochs", "2", name="straight")[0] == 0
    assert run_train(tmp_path, data_dir, *common, "--epochs", "1", name="cut")[0] == 0
    # The interrupted run was asked for 1 pass; resuming continues to its config's count.
    ckpt = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    ckpt["config"]["epochs"] = 2
    torch.save(ckpt, tmp_path / "cut" / "last.pt")
    assert train.main(["--data-dir", data_dir, "--resume", str(tmp_path / "cut")]) == 0
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["pass"] for r in metrics(tmp_path / "cut")] == [1, 2]


def test_several_seeds_train_together_into_one_directory_each(tmp_path, data_dir):
    rc, run = run_train(tmp_path, data_dir, "--seeds", "4,5", "--train-size", "500", "--epochs", "1", "--distort")
    assert rc == 0
    a, b = (torch.load(tmp_path / f"run-seed{s}" / "last.pt", weights_only=True) for s in (4, 5))
    assert (a["seed"], b["seed"]) == (4, 5)
    assert not torch.equal(a["model"]["C1.conv.weight"], b["model"]["C1.conv.weight"])
    # Seed 4 trained alone gives the same network as seed 4 trained beside seed 5.
    rc, alone = run_train(tmp_path, data_dir, "--seed", "4", "--train-size", "500", "--epochs", "1", "--distort", name="alone")
    solo = torch.load(alone / "last.pt", weights_only=True)["model"]
    for k in solo:
        assert torch.allclose(solo[k], a["model"][k], atol=1e-5), k


def test_nan_loss_stops_training_loudly_and_keeps_the_last_good_checkpoint(tmp_path, data_dir, monkeypatch, capsys):
    rc, run = run_train(tmp_path, data_dir, "--train-size", "300", "--epochs", "2")
    ckpt = torch.load(run / "last.pt", weights_only=True)
    ckpt["config"]["epochs"] = 3
    torch.save(ckpt, run / "last.pt")
    good = (run / "last.pt").read_bytes()
    real_load = train.load_mnist

    def poisoned(*args, **kwargs):
        x, y = real_load(*args, **kwargs)
        x[:] = float("nan")
        return x, y

    monkeypatch.setattr(train, "load_mnist", poisoned)
    assert train.main(["--data-dir", data_dir, "--resume", str(run)]) == 3
    assert "the loss became" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == good


def test_missing_data_exits_2_naming_the_folder_and_files(tmp_path, capsys, monkeypatch):
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    assert train.main(["--data-dir", str(tmp_path / "empty"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty" / "MNIST" / "raw") in err
    assert "train-images-idx3-ubyte" in err and "t10k-labels-idx1-ubyte" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "seed", "--loss", "eq9"], "does not fit the seed preset"),
        (["--engine", "fused", "--batch-size", "8"], "--engine fused trains the paper preset at batch size 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--seeds", "1,x"], "--seeds takes comma-separated integers"),
        (["--train-size", "0"], "--train-size must be at least 1"),
        (["--train-size", "70000"], "--train-size must be between 1 and 60000, got 70000"),
        (["--hessian-every", "-5"], "--hessian-every must be 0 (once per pass) or more"),
        (["--resume", "/nonexistent/run"], "no checkpoint at /nonexistent/run: pass a .pt file or a run directory"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys, data_dir):
    assert train.main(["--data-dir", data_dir, *argv]) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_unknown_choices_with_exit_2():
    with pytest.raises(SystemExit) as e:
        train.main(["--preset", "lenet1"])
    assert e.value.code == 2


def test_evaluate_reports_json_and_draws_the_misclassified(tmp_path, data_dir, capsys):
    rc, run = run_train(tmp_path, data_dir, "--train-size", "500", "--epochs", "1")
    png = tmp_path / "wrong.png"
    capsys.readouterr()
    assert evaluate.main(["--checkpoint", str(run), "--data-dir", data_dir, "--json", "--save-misclassified", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_test"] == 10_000
    assert result["n_wrong"] == sum(sum(row) for row in result["confusion"]) - sum(result["confusion"][d][d] for d in range(10))
    assert result["test_error_pct"] == pytest.approx(metrics(run)[-1]["test_error_pct"])
    assert len(result["per_class_error_pct"]) == 10
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("content", [None, b"not a checkpoint", "wrong-architecture"])
def test_evaluate_rejects_a_bad_checkpoint_with_exit_2(tmp_path, data_dir, content, capsys):
    path = tmp_path / "x.pt"
    if content == "wrong-architecture":
        torch.save({"model": {"C1.conv.weight": torch.zeros(3)}, "config": {"preset": "paper"}}, path)
    elif content is not None:
        path.write_bytes(content)
    assert evaluate.main(["--checkpoint", str(path), "--data-dir", data_dir]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
