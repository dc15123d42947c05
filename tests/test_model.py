import itertools

import pytest
import torch

from lenet5 import TABLE_I, LeNet5, paper_input
from lenet5.model import A, ScaledTanh, Tanh, rbf_centres


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_paper_network_has_60000_trainable_parameters_per_the_paper():
    m = LeNet5()
    assert trainable(m) == 60_000
    per_layer = {name: trainable(getattr(m, name)) for name in ("C1", "S2", "C3", "S4", "C5", "F6", "output")}
    assert per_layer == dict(C1=156, S2=12, C3=1_516, S4=32, C5=48_120, F6=10_164, output=0)


def test_layers_are_attributes_in_paper_order():
    assert [name for name, _ in LeNet5().named_children()] == ["C1", "S2", "C3", "S4", "C5", "F6", "output"]


def test_c3_connectivity_is_exactly_table_i_by_gradients():
    c3 = LeNet5().C3.double()
    s2 = torch.randn(1, 6, 14, 14, dtype=torch.float64, requires_grad=True)
    out = c3(s2)
    for m in range(16):
        (grad,) = torch.autograd.grad(out[0, m].sum(), s2, retain_graph=True)
        depends = {s for s in range(6) if grad[0, s].abs().sum() > 0}
        assert depends == set(TABLE_I[m]), m


def test_c3_stores_only_live_weights_and_runs_one_convolution():
    c3 = LeNet5().C3
    assert c3.weight.shape == (60, 5, 5) and c3.bias.shape == (16,)
    dense = c3.dense_weight()
    live = torch.zeros(16, 6, dtype=torch.bool)
    for m, sources in enumerate(TABLE_I):
        live[m, list(sources)] = True
    assert torch.all(dense[~live] == 0)
    assert torch.all(dense[live].abs().sum((1, 2)) > 0)


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("preset", ["paper", "seed"])
def test_output_is_batch_by_10(batch, preset):
    assert LeNet5(preset)(torch.randn(batch, 1, 32, 32)).shape == (batch, 10)


def test_rbf_penalties_are_squared_distances_to_the_centres():
    m = LeNet5()
    x = torch.randn(3, 1, 32, 32)
    f6 = m.features(x)["F6"]
    out = m(x)
    centres = rbf_centres()
    for b in range(3):
        for i in range(10):
            by_hand = sum((f6[b, j].item() - centres[i, j].item()) ** 2 for j in range(84))
            assert out[b, i].item() == pytest.approx(by_hand, rel=1e-5)
    assert (out >= 0).all()


def test_rbf_centres_are_fixed_distinct_plus_minus_one_bitmaps():
    m = LeNet5()
    assert "output.centres" in dict(m.named_buffers())
    c = rbf_centres()
    assert c.shape == (10, 84) and set(c.unique().tolist()) == {-1.0, 1.0}
    hamming = min(int((c[a] != c[b]).sum()) for a, b in itertools.combinations(range(10), 2))
    assert hamming == 16  # stated in model.py
    assert trainable(LeNet5(rbf_trainable=True).output) == 840


def test_predict_is_argmin_for_rbf_and_argmax_for_linear():
    x = torch.randn(5, 1, 32, 32)
    paper, seed = LeNet5(), LeNet5.seed()
    assert paper.lower_is_better and not seed.lower_is_better
    assert torch.equal(paper.predict(x), paper(x).argmin(1))
    assert torch.equal(seed.predict(x), seed(x).argmax(1))


def test_initial_weights_lie_within_2_4_over_fan_in():
    torch.manual_seed(1)
    m = LeNet5()
    fan_in = {"C1": 25, "S2": 4, "S4": 4, "C5": 400, "F6": 120}
    for name, f in fan_in.items():
        for p in getattr(m, name).parameters():
            assert p.abs().max() <= 2.4 / f
            if p.numel() >= 100:  # really spread over the range, not a tighter init
                assert p.abs().max() > 0.9 * 2.4 / f
    for k, (m_, s) in enumerate((m_, s) for m_, src in enumerate(TABLE_I) for s in src):
        assert m.C3.weight[k].abs().max() <= 2.4 / (25 * len(TABLE_I[m_]))
    for m_, src in enumerate(TABLE_I):
        assert abs(m.C3.bias[m_]) <= 2.4 / (25 * len(src))


def test_seed_variant_matches_the_write_up():
    m = LeNet5.seed()
    assert trainable(m) == 60_850
    for name in ("C1", "S2", "C3", "S4", "C5"):
        assert isinstance(getattr(m, name).f, Tanh)
    assert isinstance(m.F6.f, ScaledTanh)
    assert isinstance(m.output, torch.nn.Linear)
    assert torch.equal(m.S2.coef, torch.ones(6)) and torch.equal(m.S2.bias, torch.zeros(6))
    paper = LeNet5()
    assert all(isinstance(layer.f, ScaledTanh) for layer in paper.layers())


def test_scaled_tanh_maps_plus_minus_one_to_itself():
    f = ScaledTanh()
    assert f(torch.tensor([1.0, -1.0])).tolist() == pytest.approx([1.0, -1.0], abs=1e-4)
    assert f(torch.tensor(100.0)).item() == pytest.approx(A)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.randn(2, 1, 28, 28), r"\(B, 1, 32, 32\), got \(2, 1, 28, 28\); MNIST digits are 28x28: pad them by 2"),
        (torch.randn(1, 32, 32), r"got \(1, 32, 32\); add the batch dimension"),
        (torch.randn(2, 3, 32, 32), r"got \(2, 3, 32, 32\)"),
        (torch.zeros(2, 1, 32, 32, dtype=torch.uint8), r"floating tensor .* got dtype torch.uint8"),
        ([[0.0]], r"expects a torch.Tensor .* got list"),
    ],
)
def test_bad_input_raises_value_error_naming_expected_and_actual(bad, message):
    with pytest.raises(ValueError, match=message):
        LeNet5()(bad)


def test_paper_input_pads_to_32_and_scales_background_and_ink():
    digits = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    digits[:, :, 10, 10] = 255
    x = paper_input(digits)
    assert x.shape == (2, 1, 32, 32) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx(-0.1)
    assert x[0, 0, 12, 12].item() == pytest.approx(1.175)
    assert torch.allclose(paper_input(digits.float() / 255), x)
