"""Style transfer: the Gram matrix and the smoothing against direct computations, the
objective against Gatys's formulas, L-BFGS through a checkpoint, and the recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dlnd.checkpoint import load_model
from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.launch import run_recipe
from dlnd.pretrained import load_backbone
from dlnd.pretrained import style as st_
from dlnd.store import MODEL_FILE, load_tensors

QUICK = {"quick": True, "embedded": True, "device": "cpu"}


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    channels=st.integers(1, 5),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_gram_matrix_is_the_mean_over_positions_of_channel_products(
    n, channels, height, width, seed
):
    features = np.random.default_rng(seed).normal(size=(n, channels, height, width))
    gram = st_.gram_matrix(torch.from_numpy(features)).numpy()
    assert gram.shape == (n, channels, channels)
    for b in range(n):
        for i in range(channels):
            for j in range(channels):
                direct = sum(
                    features[b, i, y, x] * features[b, j, y, x]
                    for y in range(height)
                    for x in range(width)
                ) / (height * width)
                assert gram[b, i, j] == pytest.approx(direct, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(gram, gram.transpose(0, 2, 1))  # symmetric


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
    temperature=st.floats(0.1, 20),
    shift=st.floats(-50, 50),
    seed=st.integers(0, 2**16),
)
def test_smoothing_is_p_times_a_softmax_over_each_images_activations(
    shape, temperature, shift, seed
):
    features = np.random.default_rng(seed).normal(0, 8, size=shape)
    smoothed = st_.smooth_activations(torch.from_numpy(features), temperature).numpy()
    for b in range(shape[0]):
        exponentials = np.exp((features[b] - features[b].max()) / temperature)
        direct = features[b].size * exponentials / exponentials.sum()
        np.testing.assert_allclose(smoothed[b], direct, rtol=1e-9)
        assert smoothed[b].min() > 0 and smoothed[b].mean() == pytest.approx(1.0)
    # a softmax ignores a constant added to every activation
    shifted = st_.smooth_activations(torch.from_numpy(features + shift), temperature).numpy()
    np.testing.assert_allclose(shifted, smoothed, rtol=1e-6)


@pytest.fixture(scope="module")
def random_lite0():
    torch.manual_seed(0)
    return load_backbone("efficientnet_lite0", pretrained=False).eval()


def gatys_style_term(x_maps: torch.Tensor, a_maps: torch.Tensor) -> torch.Tensor:
    """Gatys et al.'s E_l = 1 / (4 N^2 M^2) sum_ij (G_ij - A_ij)^2 with unnormalised Grams
    G = F F^T of the (N channels x M positions) matrices, as written in the paper."""
    f = x_maps[0].reshape(x_maps.shape[1], -1).double()
    p = a_maps[0].reshape(a_maps.shape[1], -1).double()
    channels, positions = f.shape
    return ((f @ f.T - p @ p.T) ** 2).sum() / (4 * channels**2 * positions**2)


@pytest.mark.parametrize("smoothing", [0.0, 2.0])
def test_objective_is_gatys_loss_on_the_backbones_maps(random_lite0, smoothing):
    """The paper's formula needs the artwork at the image's size (its Grams are sums over
    positions); dlnd's, means over positions, takes any size."""
    generator = torch.Generator().manual_seed(1)
    content, art, image = (torch.rand(1, 3, 48, 64, generator=generator) for _ in range(3))
    layers = st_.StyleLayers(
        content="stage3", style=(("stem", 1.0), ("stage2", 0.5)), smoothing=smoothing,
        style_weight=7.0,
    )  # fmt: skip
    objective = st_.StyleObjective(random_lite0, content, art, layers, content_weight=0.3)
    parts = objective(image)
    names = ["stem", "stage2", "stage3"]
    with torch.no_grad():
        x, a, p = (random_lite0.feature_maps(t, names) for t in (image, art, content))
    content_loss = ((x["stage3"] - p["stage3"]) ** 2).mean()
    style_loss = 0.0
    for name, weight in layers.style:
        x_maps, a_maps = x[name], a[name]
        if smoothing:
            temperature = smoothing * a_maps.std()
            x_maps = st_.smooth_activations(x_maps, temperature)
            a_maps = st_.smooth_activations(a_maps, temperature)
        style_loss += weight * 4 * gatys_style_term(x_maps, a_maps)
    torch.testing.assert_close(parts["content"].double(), content_loss.double(), rtol=1e-4, atol=0)
    torch.testing.assert_close(parts["style"].double(), style_loss, rtol=1e-4, atol=0)
    expected = 0.3 * content_loss + 7.0 * style_loss
    torch.testing.assert_close(parts["loss"].double(), expected.double(), rtol=1e-4, atol=0)
    assert objective(content)["content"] == 0  # the photo has its own content exactly


def test_lbfgs_state_survives_a_safetensors_checkpoint():
    """Five steps, then the state through state_dict/load_state_dict as the loop stores it,
    then five more steps: equal to ten steps in one go."""
    from dlnd.loop import flatten_optimizer, unflatten_optimizer

    target = torch.linspace(-1, 1, 12)

    def make():
        x = torch.nn.Parameter(torch.zeros(12))
        return x, st_.LBFGS([x], lr=1, max_iter=1, history_size=3)

    def steps(x, optimizer, count):
        def loss():
            optimizer.zero_grad()
            value = ((x - target) ** 4).sum() + (x**2).sum()
            value.backward()
            return value

        for _ in range(count):
            optimizer.step(loss)

    x1, straight = make()
    steps(x1, straight, 10)
    x2, first = make()
    steps(x2, first, 5)
    tensors: dict[str, torch.Tensor] = {}
    meta = json.loads(json.dumps(flatten_optimizer(first.state_dict(), tensors, "o.")))
    x3, second = make()
    with torch.no_grad():
        x3.copy_(x2)
    second.load_state_dict(unflatten_optimizer(meta, tensors, "o."))
    assert len(second.state[x3]["old_dirs"]) == 3
    steps(x3, second, 5)
    torch.testing.assert_close(x3, x1, rtol=0, atol=0)


def test_pictures_keep_their_proportions_and_bad_files_are_one_sentence(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 100), (200, 10, 10)).save(path)
    picture = st_.load_picture(path, 60)
    assert picture.shape == (1, 3, 20, 60) and picture.dtype == torch.float32
    assert picture[0, 0].mean() == pytest.approx(200 / 255, abs=0.01)
    # a phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees to show it)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (300, 100)).save(tmp_path / "sideways.jpg", exif=exif)
    assert st_.load_picture(tmp_path / "sideways.jpg", 60).shape == (1, 3, 60, 20)
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(UserError, match="notes.jpg is not a readable image"):
        st_.load_picture(tmp_path / "notes.jpg", 60)
    with pytest.raises(UserError, match="does not exist"):
        st_.load_picture(tmp_path / "missing.jpg", 60)


def test_vgg_weights_are_the_courses_objective_at_400_pixels():
    """The course's layer term w mean((F F^T - A A^T)^2) / (C H W) x 1e6 equals dlnd's
    weight x style weight x mean((G - A)^2) with G = F F^T / (H W), on VGG19's maps of a
    400 x 270 picture."""
    vgg = load_backbone("vgg19", pretrained=False)
    layers = st_.style_layers_for("vgg")
    assert layers.style_names == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert layers.content == "relu4_2" and layers.smoothing == 0
    course = dict(zip(layers.style_names, (1.0, 0.75, 0.2, 0.2, 0.2), strict=True))
    for block, (name, weight) in enumerate(layers.style, 1):
        # block b follows b - 1 max-pools, each halving (rounding down) the 270 x 400 input
        height, width = 270 // 2 ** (block - 1), 400 // 2 ** (block - 1)
        channels = min(64 * 2 ** (block - 1), 512)
        # (H W)^2 mean((G - A)^2) / (C H W) = (H W / C) mean((G - A)^2)
        expected = 1e6 * course[name] * height * width / channels
        assert weight * layers.style_weight == pytest.approx(expected, rel=0.01), name
    pictures = torch.rand(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    parts = st_.StyleObjective(vgg, pictures[0], pictures[1], layers)(pictures[0])
    assert parts["content"] == 0 and parts["style"] > 0


def test_auto_backbone_is_vgg19_only_when_its_weights_are_cached(tmp_path, monkeypatch):
    from dlnd.pretrained.recipes import style_backbone
    from dlnd.pretrained.torchvision_backbones import default_weights, hub_checkpoint_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert style_backbone("auto") == "efficientnet_lite0"
    cached = hub_checkpoint_path(default_weights("vgg19").url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert style_backbone("auto") == "vgg19"
    assert style_backbone("efficientnet_lite0") == "efficientnet_lite0"


def test_unknown_family_and_adam_with_lbfgs_step_are_refused():
    with pytest.raises(UserError, match="VGG and EfficientNet-Lite"):
        st_.style_layers_for("resnet")
    with pytest.raises(UserError, match="--lr 0.02"):
        run_recipe("style-transfer", **QUICK, optimizer="adam", out="unused")


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_quick_style_transfer_lowers_the_loss_and_saves_its_pictures(tmp_path, optimizer, lr):
    final = run_recipe("style-transfer", **QUICK, out=str(tmp_path), optimizer=optimizer, lr=lr)
    run_dir = final["run_dir"]
    rows = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"], rows
    plots = {p.stem for p in (tmp_path / "style-transfer").glob("*/plots/*.png")}
    assert plots >= {"result", "progress", "loss_per_step", "learning_curves"}
    stylised = Image.open(f"{run_dir}/stylised.png")
    assert stylised.size == (96, 64)  # the road drawing, 96 pixels on its longer side
    image, meta = load_model(run_dir)  # the image rebuilds from its checkpoint
    assert meta["info"]["task"] == "style-transfer"
    pixels = image().detach()
    assert pixels.min() >= 0 and pixels.max() <= 1
    saved = np.asarray(stylised).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(pixels[0].numpy(), saved, atol=0.5 / 255 + 1e-6)


def test_resumed_style_transfer_equals_an_uninterrupted_one(tmp_path):
    small = {**QUICK, "size": 48, "steps_per_epoch": 4}  # the equality is exact at any size
    straight = run_recipe("style-transfer", **small, out=str(tmp_path / "a"), epochs=3)
    first = run_recipe("style-transfer", **small, out=str(tmp_path / "b"), epochs=2)
    resumed = run_recipe(
        "style-transfer", **small, out=str(tmp_path / "b"), epochs=3, resume=first["run_dir"]
    )
    assert resumed["metrics"] == straight["metrics"]
    a, _ = load_tensors(f"{straight['run_dir']}/{MODEL_FILE}")
    b, _ = load_tensors(f"{resumed['run_dir']}/{MODEL_FILE}")
    assert torch.equal(a["pixels"], b["pixels"])


def test_export_of_a_style_transfer_run_keeps_its_artwork_not_a_network(tmp_path, capsys):
    """A style is served with PyTorch (tests/test_serve_style.py): no ONNX graph is written,
    and TorchScript is refused with a sentence."""
    final = run_recipe("style-transfer", **QUICK, out=str(tmp_path), epochs=1)
    assert main(["export", final["run_dir"], "--out", str(tmp_path / "style")]) == 0
    assert sorted(p.name for p in (tmp_path / "style").iterdir()) == [
        "model_card.json",
        "style.png",
    ]
    assert main(["export", final["run_dir"], "--format", "torchscript"]) == 2
    assert "leave out --format torchscript" in capsys.readouterr().err
