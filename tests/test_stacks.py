"""Lesson 09's stacks, their training, the band masks of the fair test and the stored seed runs."""

from __future__ import annotations

import math

import pytest
import torch

from pconv_lessons.baselines import fill_with_mean
from pconv_lessons.course import stacks
from pconv_lessons.course.ablation import hole_l1_per_image
from pconv_lessons.course.receptive import conv_specs, receptive_field
from pconv_lessons.course.resolution import at_scale


def test_the_stacks_have_the_fields_the_lesson_states():
    built = stacks.make_stacks(seed=0)
    assert receptive_field(conv_specs(built[stacks.PLAIN])) == stacks.PLAIN_FIELD == 13
    assert receptive_field(conv_specs(built[stacks.DILATED])) == 127
    counts = {name: sum(p.numel() for p in stack.parameters()) for name, stack in built.items()}
    assert counts[stacks.FFC_BLOCKS] < counts[stacks.PLAIN] == counts[stacks.DILATED]


def test_make_stacks_is_seeded():
    first, again, other = stacks.make_stacks(3), stacks.make_stacks(3), stacks.make_stacks(4)
    weight = lambda built: next(built[stacks.FFC_BLOCKS].parameters())  # noqa: E731
    assert torch.equal(weight(first), weight(again))
    assert not torch.equal(weight(first), weight(other))


def _by_hand(model, batches, steps, lr=2e-3):
    """The loss of the module docstring written out, one Adam step per batch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        image, mask = batches(step)
        error = (model(image, mask) - image).abs()
        loss = (error * mask).sum() + 6 * (error * (1 - mask)).sum()
        optimiser.zero_grad()
        (loss / error.numel()).backward()
        optimiser.step()


def _tiny_batches(step):
    generator = torch.Generator().manual_seed(step)
    image = torch.rand(2, 3, 12, 12, generator=generator)
    mask = (torch.rand(2, 1, 12, 12, generator=generator) > 0.4).float()
    return image, mask


def test_train_alike_computes_the_weighted_l1_of_its_docstring():
    def fresh():
        torch.manual_seed(1)
        return stacks.StackInpainter(stacks.conv_bn_relu_stack([1, 2], channels=4), channels=4)

    trained, reference = fresh(), fresh()
    losses = stacks.train_alike({"one": trained}, _tiny_batches, steps=3)
    _by_hand(reference, _tiny_batches, steps=3)
    assert len(losses["one"]) == 3 and not trained.training
    for mine, theirs in zip(trained.parameters(), reference.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_train_alike_feeds_every_model_the_same_batches():
    def fresh():
        torch.manual_seed(2)
        return stacks.StackInpainter(stacks.conv_bn_relu_stack([1], channels=4), channels=4)

    models = {"a": fresh(), "b": fresh()}
    losses = stacks.train_alike(models, _tiny_batches, steps=4)
    assert losses["a"] == losses["b"]
    for first, second in zip(models["a"].parameters(), models["b"].parameters()):
        assert torch.equal(first, second)


def test_band_masks_hold_one_band_across_the_patch_inside_the_margin():
    size, fraction, margin = 20, 0.5, 2
    masks = stacks.band_masks(40, size, fraction, seed=5, margin=margin)
    width = math.ceil(fraction * size)
    orientations = set()
    for mask in masks[:, 0]:
        hole = mask == 0
        rows, cols = hole.all(dim=1), hole.all(dim=0)  # rows / columns that are entirely hole
        band = rows if rows.any() else cols
        orientations.add(bool(rows.any()))
        assert int(hole.sum()) == width * size
        indices = band.nonzero().flatten().tolist()
        assert indices == list(range(indices[0], indices[0] + width))
        assert margin <= indices[0] and indices[-1] < size - margin
    assert orientations == {True, False}
    assert torch.equal(masks, stacks.band_masks(40, size, fraction, seed=5, margin=margin))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.95])
def test_band_masks_reject_a_band_that_leaves_no_known_side(fraction):
    with pytest.raises(ValueError, match="fraction"):
        stacks.band_masks(2, 20, fraction, margin=2)


def test_beyond_reach_matches_a_loop_over_windows():
    generator = torch.Generator().manual_seed(0)
    masks = (torch.rand(3, 1, 15, 17, generator=generator) > 0.85).float()
    field = 5
    expected = []
    for mask in masks[:, 0]:
        far = total = 0
        for y in range(mask.shape[0]):
            for x in range(mask.shape[1]):
                if mask[y, x] == 0:
                    total += 1
                    window = mask[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
                    far += int(window.max() == 0)
        expected.append(far / total)
    assert torch.allclose(stacks.beyond_reach(masks, field), torch.tensor(expected))


def test_beyond_reach_of_a_band_counts_the_rows_farther_than_half_the_field():
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:24, :] = 0  # a band of 16 rows: rows 6 … 9 of it are more than 6 px from a known row
    assert float(stacks.beyond_reach(mask, stacks.PLAIN_FIELD)) == pytest.approx(4 / 16)
    with pytest.raises(ValueError, match="odd"):
        stacks.beyond_reach(mask, 4)


def test_score_at_scales_scores_each_method_on_the_scaled_holes():
    generator = torch.Generator().manual_seed(0)
    regions = torch.rand(4, 3, 32, 32, generator=generator)
    masks = stacks.band_masks(4, 8, seed=1)
    tables, examples = stacks.score_at_scales({"mean fill": fill_with_mean}, regions, masks, pairs=(), scales=(1, 4))
    images, scaled = at_scale(regions, masks, 4)
    expected = 100 * hole_l1_per_image(fill_with_mean(images, scaled), images, scaled).mean()
    assert tables[4].methods["mean fill"].mean == pytest.approx(float(expected))
    assert tables[1].methods["mean fill"].mean != pytest.approx(float(expected))
    assert list(examples[4]) == ["input", "mean fill", "original"] and examples[4]["original"].shape == (3, 32, 32)


def test_seed_table_prints_every_seed_and_scale():
    record = {"m": [10.0, 9.0, 11.0], "m − n": [-1.5, -2.0, -1.0]}
    runs = {"0": {"bands": {"1": record, "2": record}}, "7": {"bands": {"1": record}}}
    lines = stacks.seed_table(runs, "bands", ["m", "m − n"]).splitlines()
    assert len(lines) == 4
    assert lines[3].split()[:2] == ["7", "1×"] and "-1.50 [-2.00, -1.00]" in lines[3] and "+10.00 [+9.00, +11.00]" in lines[3]


def test_the_stored_seed_runs_cover_several_seeds_both_kinds_and_every_scale():
    stored = stacks.load_seed_runs()
    assert len(stored["runs"]) >= 3 and stored["settings"]["threads"] == 1
    for tables in stored["runs"].values():
        assert set(tables) == {"bands", "mixed"}
        for by_scale in tables.values():
            assert list(by_scale) == [str(scale) for scale in stacks.SCALES]
            for record in by_scale.values():
                assert {stacks.PLAIN, stacks.DILATED, stacks.FFC_BLOCKS, "biharmonic", "mean fill"} <= set(record)
                assert all(low <= mean <= high for mean, low, high in record.values())


def test_save_and_load_trained_give_back_the_same_inpainters_only_for_the_same_settings(tmp_path):
    models = {name: stacks.StackInpainter(stack) for name, stack in stacks.make_stacks(5).items()}
    losses = stacks.train_alike(models, lambda step: _tiny_batches(step), steps=2)
    settings = stacks.training_settings(seed=5, train_size=12, batch=2, steps=2)
    path = tmp_path / "stacks.pt"
    stacks.save_trained(models, losses, settings, path)
    loaded, loaded_losses = stacks.load_trained(settings, path)
    assert loaded_losses == losses and list(loaded) == list(models)
    image, mask = _tiny_batches(9)
    with torch.no_grad():
        for name, model in models.items():
            assert not loaded[name].training
            assert torch.equal(loaded[name](image, mask), model(image, mask))
    assert stacks.load_trained({**settings, "steps": 3}, path) is None
    assert stacks.load_trained(settings, tmp_path / "missing.pt") is None


def test_the_shipped_stacks_are_the_lessons_fast_mode_run():
    settings = stacks.training_settings(seed=0, train_size=32, batch=8, steps=600)
    loaded = stacks.load_trained(settings)
    assert loaded is not None, f"{stacks.TRAINED} should hold the fast-mode run {settings}"
    models, losses = loaded
    assert set(models) == {stacks.PLAIN, stacks.DILATED, stacks.FFC_BLOCKS}
    assert all(len(values) == 600 for values in losses.values())
