"""pconv_lessons.course.ablation: per-image hole error by hand, the verdict's three cases, and bad input."""

import pytest
import torch

from pconv_lessons.course.ablation import Interval, compare, hole_l1_per_image, verdict


def test_hole_l1_per_image_matches_a_hand_count():
    image = torch.zeros(2, 3, 2, 2)
    prediction = image.clone()
    mask = torch.ones(2, 1, 2, 2)
    mask[0, 0, 0, 0] = 0  # image 0: one hole pixel, error 0.5 in every channel
    mask[1, 0, 1] = 0  # image 1: two hole pixels, errors 0.3 and 0.0
    prediction[0, :, 0, 0] = 0.5
    prediction[0, :, 1, 1] = 9.0  # a known pixel: never counted
    prediction[1, :, 1, 0] = 0.3
    assert torch.allclose(hole_l1_per_image(prediction, image, mask), torch.tensor([0.5, 0.15]))


def test_hole_l1_per_image_refuses_a_mask_without_hole_and_a_misshapen_prediction():
    image, mask = torch.zeros(2, 3, 4, 4), torch.ones(2, 1, 4, 4)
    mask[0, 0, 0, 0] = 0
    with pytest.raises(ValueError, match=r"masks \[1\] have none"):
        hole_l1_per_image(image, image, mask)
    with pytest.raises(ValueError, match="prediction must have the image's shape"):
        hole_l1_per_image(image[:, :, :2], image, mask)


def test_verdict_names_lower_higher_and_indistinguishable():
    assert "lower than b's" in verdict("a", "b", Interval(-1.0, -1.5, -0.5), 10)
    assert "higher than b's" in verdict("a", "b", Interval(1.0, 0.5, 1.5), 10)
    assert "not distinguishable from b's on these 10 images" in verdict("a", "b", Interval(0.1, -0.2, 0.4), 10)


def test_compare_pairs_differences_per_image():
    torch.manual_seed(0)
    hardness = torch.rand(40)  # shared by both methods: large spread between images
    errors = {"good": hardness, "bad": hardness + 0.01, "noise": hardness + 0.02 * torch.randn(40)}
    result = compare(errors, [("good", "bad"), ("good", "noise")])
    worse = result.differences["good", "bad"]
    assert worse.mean == pytest.approx(-1.0) and worse.high < 0  # paired: a 0.01 gap shows despite the spread
    lows = {name: interval.low for name, interval in result.methods.items()}
    assert lows["good"] < result.methods["bad"].mean  # unpaired intervals overlap
    text = str(result)
    assert "good: error lower than bad's" in text and "not distinguishable from noise's on these 40 images" in text


def test_compare_refuses_unknown_pairs_and_mismatched_images():
    with pytest.raises(ValueError, match=r"not in errors: \['c'\]"):
        compare({"a": torch.rand(5), "b": torch.rand(5)}, [("a", "c")])
    with pytest.raises(ValueError, match="same images"):
        compare({"a": torch.rand(5), "b": torch.rand(6)})
    with pytest.raises(ValueError, match="at least one method"):
        compare({})


def test_compare_names_any_score_in_its_header_and_verdicts():
    psnrs = {"model": torch.tensor([30.0, 31.0, 32.0, 33.0]), "baseline": torch.tensor([28.0, 29.0, 29.5, 30.0])}
    text = str(compare(psnrs, [("model", "baseline")], scale=1.0, label="PSNR (dB)", measure="PSNR"))
    assert text.startswith("PSNR (dB)") and "model: PSNR higher than baseline's (difference +2.38" in text
    assert "31.50" in text  # unscaled
