"""``dlnd predict``, ``dlnd features`` and ``dlnd filters`` on a quickly trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dlnd.checkpoint import load_model
from dlnd.cli import execute, main, resolve_config
from dlnd.recipes import get_recipe
from dlnd.vision import predict, synthetic
from dlnd.vision.predict import image_to_tensor, load_image, scale_pixels


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    """A quick mnist-cnn run on generated digits."""
    out = tmp_path_factory.mktemp("runs")
    recipe = get_recipe("mnist-cnn")
    flags = {"quick": True, "embedded": True, "out": str(out), "device": "cpu"}
    cfg = resolve_config(recipe, flags)
    run_dir = out / "mnist-cnn"
    run_dir.mkdir()
    execute(recipe, cfg, run_dir=run_dir)
    return run_dir


@pytest.fixture
def digit_files(tmp_path):
    """Twelve new digit images (another seed than training) as PNG files, with their labels."""
    images, labels = synthetic.digit_images(12, seed=1234)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"digit_{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths, labels


def test_scale_pixels_inverts_light_pictures_only_when_asked():
    dark = np.zeros((1, 2, 2), dtype=np.uint8)
    light = np.full((1, 2, 2), 255, dtype=np.uint8)
    assert scale_pixels(light, False).max() == 1.0
    assert scale_pixels(light, True).max() == 0.0
    assert scale_pixels(light, "auto").max() == 0.0
    assert scale_pixels(dark, "auto").max() == 0.0  # already light-on-dark: kept


def test_a_saved_png_becomes_exactly_the_training_input(digit_run, digit_files):
    _, meta = load_model(digit_run)
    paths, _ = digit_files
    pixels = np.asarray(Image.open(paths[0]))
    expected = torch.from_numpy(pixels.astype(np.float32) / 255)[None, None]
    torch.testing.assert_close(load_image(paths[0], meta["info"]), expected)
    # Black-on-white drawing of the same digit: inverted back to white-on-black.
    inverted = Image.fromarray(255 - pixels)
    torch.testing.assert_close(image_to_tensor(inverted, meta["info"]), expected)


def test_predict_prints_top_k_and_an_error_for_a_non_image(
    digit_run, digit_files, tmp_path, capsys
):
    paths, labels = digit_files
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    status = main(["predict", str(digit_run), *map(str, paths), str(bad), "--top-k", "3"])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.out.strip().splitlines()
    assert len(lines) == len(paths)
    correct = 0
    for line, path, label in zip(lines, paths, labels, strict=True):
        assert line.startswith(f"{path}: ")
        ranked = line.split(": ", 1)[1].split(", ")
        assert len(ranked) == 3 and all(part.endswith("%") for part in ranked)
        correct += ranked[0].split()[0] == str(label)
    assert correct >= 8  # the quick model reads most new digits correctly
    assert "notes.png" in captured.err and captured.err.count("error") == 1


def test_predict_json_of_a_run_gives_one_object_per_file(digit_run, digit_files, tmp_path, capsys):
    paths, _ = digit_files
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    files = [str(paths[0]), str(bad), str(paths[1])]
    assert main(["predict", str(digit_run), *files, "--top-k", "2", "--json"]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == files
    assert "not a readable image" in lines[1]["error"] and "predictions" not in lines[1]
    for line in (lines[0], lines[2]):
        assert [set(p) for p in line["predictions"]] == [{"label", "probability"}] * 2
        assert line["predictions"][0]["probability"] >= line["predictions"][1]["probability"]
        assert line["predictions"][0]["label"] in [str(d) for d in range(10)]


def test_files_in_several_batches_keep_their_order_and_errors(
    digit_run, digit_files, tmp_path, monkeypatch
):
    model, meta = load_model(digit_run)
    paths, _ = digit_files
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    files = [str(p) for p in paths[:6]] + [str(bad)] + [str(p) for p in paths[6:]]
    whole = predict.classify_files(model, meta["info"], files, k=2)
    monkeypatch.setattr(predict, "FILES_PER_BATCH", 5)
    batched = predict.classify_files(model, meta["info"], files, k=2)
    assert [r.path for r in batched] == files and batched[6].error and batched[6].top is None
    for one, other in zip(whole, batched, strict=True):
        assert one.error == other.error
        if one.top is not None:
            assert [c for c, _ in one.top] == [c for c, _ in other.top]
            np.testing.assert_allclose(
                [p for _, p in one.top], [p for _, p in other.top], atol=1e-5
            )


def test_predict_exits_zero_when_every_file_is_readable(digit_run, digit_files, capsys):
    paths, _ = digit_files
    assert main(["predict", str(digit_run), str(paths[0]), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.count("%") == 1


def test_features_writes_filters_and_feature_maps(digit_run, digit_files, tmp_path, capsys):
    paths, _ = digit_files
    assert main(["features", str(digit_run), str(paths[0]), "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "first_layer_filters.png").is_file()
    assert (tmp_path / "f" / "feature_maps_digit_0.png").is_file()


def test_filters_command_and_its_error_for_a_non_image(tmp_path, capsys):
    picture = tmp_path / "road.png"
    synthetic.road_scene().save(picture)
    assert main(["filters", str(picture), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "filters_road.png").is_file()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    assert main(["filters", str(bad)]) == 2
    assert "bad.jpg" in capsys.readouterr().err
