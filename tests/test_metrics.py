"""Metrics against scikit-image and hand-worked values; evaluation by bucket on tiny methods."""

import csv
import io
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from pconv_lessons import metrics
from pconv_lessons.baselines import fill_with_mean
from pconv_lessons.data import sample_images

SIX_BUCKETS = [(0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6)]


def skimage_ssim(pred, target, data_range):
    """scikit-image's SSIM calibrated to Wang et al. (not its defaults), one image at a time."""
    return [
        structural_similarity(
            t.permute(1, 2, 0).double().numpy(),
            p.permute(1, 2, 0).double().numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=2,
        )
        for p, t in zip(pred, target)
    ]


def skimage_psnr(pred, target, data_range):
    return [
        peak_signal_noise_ratio(t.double().numpy(), p.double().numpy(), data_range=data_range)
        for p, t in zip(pred, target)
    ]


def noisy_pairs():
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(3, 3, 37, 52, generator=generator)
    yield "random", target, (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1), 1.0
    grey = torch.rand(2, 1, 24, 19, generator=generator) * 255
    yield "grey-255", grey, (grey + 20 * torch.randn(grey.shape, generator=generator)).clamp(0, 255), 255.0
    photos = sample_images(["astronaut", "coffee", "chelsea"])
    crops = torch.stack([photo[:, 40:136, 60:188] for photo in photos.values()])
    yield "photos", crops, (crops + 0.05 * torch.randn(crops.shape, generator=generator)).clamp(0, 1), 1.0


@pytest.mark.parametrize("case", list(noisy_pairs()), ids=lambda case: case[0])
def test_ssim_and_psnr_equal_scikit_image(case):
    _, target, pred, data_range = case
    ours_ssim = metrics.ssim(pred, target, data_range=data_range)
    ours_psnr = metrics.psnr(pred, target, data_range=data_range)
    assert ours_ssim.shape == ours_psnr.shape == (target.shape[0],)
    np.testing.assert_allclose(ours_ssim.numpy(), skimage_ssim(pred, target, data_range), atol=1e-4)
    np.testing.assert_allclose(ours_psnr.numpy(), skimage_psnr(pred, target, data_range), atol=1e-4)


def test_ssim_differs_from_an_uncropped_average():
    """The border crop matters: averaging torchmetrics' padded SSIM map everywhere gives another number."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, target, pred, _ = next(noisy_pairs())
    uncropped = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
    assert (uncropped - metrics.ssim(pred, target)).abs().max() > 1e-4


def test_psnr_hand_worked():
    target = torch.zeros(1, 1, 2, 2)
    pred = target.clone()
    pred[0, 0, 0, 0] = 0.5  # MSE = 0.25 / 4 = 1/16, PSNR = 10·log10(16)
    assert metrics.psnr(pred, target).item() == pytest.approx(10 * math.log10(16), abs=1e-5)
    assert metrics.psnr(pred * 255, target * 255, data_range=255).item() == pytest.approx(12.0412, abs=1e-4)


def test_identical_images():
    image = torch.rand(2, 3, 16, 16)
    assert torch.isinf(metrics.psnr(image, image)).all()
    assert torch.allclose(metrics.ssim(image, image), torch.ones(2), atol=1e-6)
    assert torch.equal(metrics.l1(image, image), torch.zeros(2))


def test_l1_equals_numpy():
    generator = torch.Generator().manual_seed(2)
    pred, target = torch.rand(4, 3, 9, 11, generator=generator), torch.rand(4, 3, 9, 11, generator=generator)
    expected = np.abs(pred.numpy().astype(np.float64) - target.numpy()).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(metrics.l1(pred, target).numpy(), expected, rtol=1e-6)


def test_low_precision_inputs_are_scored_in_float32():
    _, target, pred, _ = next(noisy_pairs())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = metrics.ssim(pred.bfloat16(), target.bfloat16())
    assert half.dtype == torch.float32
    assert torch.allclose(half, metrics.ssim(pred, target), atol=1e-2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9)), "does not match"),
        (lambda: metrics.l1(torch.rand(3, 8, 8), torch.rand(3, 8, 8)), r"\(N, C, H, W\)"),
        (lambda: metrics.ssim(torch.rand(1, 3, 10, 30), torch.rand(1, 3, 10, 30)), "at least 11"),
        (lambda: metrics.psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), data_range=0), "data_range"),
        (lambda: metrics.ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), data_range=-1), "data_range"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def masks_with_ratio(count, size, ratio, seed):
    """Masks whose hole ratio is exactly round(ratio·H·W)/(H·W): a random set of hole pixels per mask."""
    generator = torch.Generator().manual_seed(seed)
    holes = round(ratio * size * size)
    masks = torch.ones(count, size * size)
    for row in masks:
        row[torch.randperm(size * size, generator=generator)[:holes]] = 0.0
    return masks.view(count, 1, size, size)


def six_bucket_masks(count=3, size=24):
    return {bucket: masks_with_ratio(count, size, sum(bucket) / 2, index) for index, bucket in enumerate(SIX_BUCKETS)}


class TinyInpainter(nn.Module):
    """A two-layer conv net with BatchNorm: eval mode must be used and the training flag restored."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)
        )

    def forward(self, image, mask):
        assert not self.training, "evaluation must run the model in eval mode"
        return torch.sigmoid(self.net(torch.cat([image, mask], dim=1)))


def test_bucket_evaluation_table_has_six_rows_and_the_overall_mean():
    images = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    model = TinyInpainter().train()
    methods = {"tiny": model, "mean": fill_with_mean}
    result = metrics.evaluate_by_bucket(methods, images, six_bucket_masks(), batch_size=2)
    assert model.training
    assert result.row_labels == (
        "(0.01, 0.1]", "(0.1, 0.2]", "(0.2, 0.3]", "(0.3, 0.4]", "(0.4, 0.5]", "(0.5, 0.6]", "all"
    )
    table = result.table()
    assert table.shape == (7, 3, 2)
    assert np.isfinite(table).all()
    np.testing.assert_allclose(table[-1], table[:-1].mean(axis=0))  # equal counts per bucket
    # Composited outputs lose more as holes grow.
    l1_mean = table[:-1, 0, 1]
    assert (np.diff(l1_mean) > 0).all()


def test_bucket_scores_are_the_metrics_of_the_composite():
    images = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    masks = six_bucket_masks(count=4)

    def grey(image, mask):
        assert torch.equal(image * (1 - mask), torch.zeros_like(image)), "methods must see the holes zeroed"
        return torch.full_like(image, 0.5)

    result = metrics.evaluate_by_bucket({"grey": grey}, images, masks, batch_size=3)
    bucket = SIX_BUCKETS[4]
    mask = masks[bucket]
    composite = images * mask + 0.5 * (1 - mask)
    expected_psnr = metrics.psnr(composite, images).mean().item()
    expected_ssim = metrics.ssim(composite, images).mean().item()
    assert result.value(bucket, "PSNR (dB)", "grey") == pytest.approx(expected_psnr, rel=1e-6)
    assert result.value(bucket, "SSIM", "grey") == pytest.approx(expected_ssim, rel=1e-6)
    expected_l1 = 100 * (composite - images).abs().mean().item()
    assert result.value(bucket, "L1 (%)", "grey") == pytest.approx(expected_l1, rel=1e-6)
    torch.testing.assert_close(result.per_image("SSIM", "grey")[4], metrics.ssim(composite, images).double())


def test_table_renders_and_saves(tmp_path):
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    methods = {"mean": fill_with_mean, "grey": lambda i, m: torch.full_like(i, 0.5)}
    result = metrics.evaluate_by_bucket(methods, images, six_bucket_masks(2, 16))
    text = result.to_csv(tmp_path / "table.csv")
    assert (tmp_path / "table.csv").read_text() == text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:7] == [
        "bucket", "L1 (%) mean", "L1 (%) grey", "PSNR (dB) mean", "PSNR (dB) grey", "SSIM mean", "SSIM grey"
    ]
    assert rows[0][7] == "L1 (%) mean 95% low" and rows[0][-1] == "SSIM grey 95% high" and len(rows[0]) == 19
    assert [row[0] for row in rows[1:]] == list(result.row_labels)
    assert float(rows[7][5]) == result.value("all", "SSIM", "mean")
    assert (float(rows[7][11]), float(rows[7][17])) == result.interval("all", "SSIM", "mean")
    markdown = result.to_markdown(tmp_path / "table.md")
    assert markdown.count("\n") == 9 and markdown.count("**") >= 2 * 3 * 7
    page = result._repr_html_()
    assert all(label in page for label in result.row_labels) and page.startswith("<table>")
    assert "(0.5, 0.6]" in str(result)


def test_evaluation_is_deterministic_and_rejects_bad_masks_and_methods():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    masks = six_bucket_masks(2, 16)
    first = metrics.evaluate_by_bucket({"mean": fill_with_mean}, images, masks)
    second = metrics.evaluate_by_bucket({"mean": fill_with_mean}, images, masks)
    assert torch.equal(first.scores, second.scores)
    wrong_bucket = {(0.3, 0.4): masks[(0.1, 0.2)]}
    with pytest.raises(ValueError, match=r"outside its bucket \(0.3, 0.4\]"):
        metrics.evaluate_by_bucket({"mean": fill_with_mean}, images, wrong_bucket)
    with pytest.raises(ValueError, match="'crop'"):
        metrics.evaluate_by_bucket({"crop": lambda i, m: i[..., 1:, :]}, images, masks)
    with pytest.raises(ValueError, match="'nan'"):
        metrics.evaluate_by_bucket({"nan": lambda i, m: i / 0 * 0}, images, masks)
    with pytest.raises(ValueError, match="at least one method"):
        metrics.evaluate_by_bucket({}, images, masks)
    with pytest.raises(ValueError, match="unknown metric"):
        first.value("all", "MSE", "mean")


def _evaluation_of(scores: torch.Tensor, **kwargs) -> metrics.BucketEvaluation:
    """A BucketEvaluation of given per-image scores (methods, metrics, buckets, images), no model run."""
    methods = tuple(f"m{i}" for i in range(scores.shape[0]))
    return metrics.BucketEvaluation(methods, metrics.PAPER_METRICS[: scores.shape[1]],
                                    tuple(SIX_BUCKETS[: scores.shape[2]]), scores.double(), **kwargs)


def test_bootstrap_interval_matches_a_loop_over_resamples_and_the_normal_approximation():
    scores = torch.randn(1, 1, 2, 400, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 10
    result = _evaluation_of(scores, resamples=2000, bootstrap_seed=3)
    # Brute force: the same draws, one resample at a time.
    generator = torch.Generator().manual_seed(3)
    by_loop = []
    for b in range(2):
        draws = torch.randint(0, 400, (2000, 400), generator=generator)
        by_loop.append(torch.stack([scores[0, 0, b, row].mean() for row in draws]))
    low, high = torch.quantile(by_loop[1], torch.tensor([0.025, 0.975], dtype=torch.float64))
    assert result.interval(SIX_BUCKETS[1], "L1 (%)", "m0") == pytest.approx((float(low), float(high)))
    # Normal approximation: mean ± 1.96 · sd / √n.
    half = 1.96 * scores[0, 0, 0].std() / 20
    low, high = result.interval(SIX_BUCKETS[0], "L1 (%)", "m0")
    assert low < result.value(SIX_BUCKETS[0], "L1 (%)", "m0") < high
    assert (high - low) / 2 == pytest.approx(float(half), rel=0.15)


def test_bootstrap_interval_is_seeded_narrows_with_more_images_and_vanishes_for_constant_scores():
    noisy = torch.rand(1, 1, 1, 1024, generator=torch.Generator().manual_seed(1))
    width = lambda result: np.diff(result.intervals()[0, 0, 0])[0]  # noqa: E731
    small, large = _evaluation_of(noisy[..., :64]), _evaluation_of(noisy)
    assert width(large) < 0.5 * width(small)  # √(1024/64) = 4
    assert np.array_equal(_evaluation_of(noisy).intervals(), large.intervals())
    assert not np.array_equal(_evaluation_of(noisy, bootstrap_seed=1).intervals(), large.intervals())
    constant = _evaluation_of(torch.full((1, 1, 1, 32), 0.7))
    assert constant.interval("all", "L1 (%)", "m0") == pytest.approx((0.7, 0.7))
    with pytest.raises(ValueError, match="confidence"):
        metrics.evaluate_by_bucket({"mean": fill_with_mean}, noisy.new_zeros(1, 3, 8, 8), confidence=95)


def test_lpips_without_the_vgg16_weights_says_where_they_belong(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics, "vgg16_cache_path", lambda: tmp_path / "vgg16-397923af.pth")
    assert not metrics.lpips_available()
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        metrics.lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


@pytest.mark.skipif(not metrics.lpips_available(), reason="needs the ImageNet VGG16 weights in the torch cache")
def test_lpips_is_zero_for_identical_images_and_grows_with_noise():
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(1))
    scores = [metrics.lpips((image + s * noise).clamp(0, 1), image) for s in (0.0, 0.05, 0.2)]
    assert scores[0].shape == (2,) and torch.allclose(scores[0], torch.zeros(2), atol=1e-6)
    assert (scores[1] < scores[2]).all()


@pytest.mark.gpu
def test_metrics_on_the_gpu_equal_the_cpu():
    _, target, pred, _ = next(noisy_pairs())
    for metric in (metrics.l1, metrics.psnr, metrics.ssim):
        on_gpu = metric(pred.cuda(), target.cuda())
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), metric(pred, target), atol=1e-5, rtol=1e-5)


def test_default_masks_are_seeded_free_form_masks_in_the_six_paper_buckets():
    from pconv_lessons.masks import PAPER_BUCKETS, hole_ratio

    assert list(PAPER_BUCKETS) == SIX_BUCKETS
    masks = metrics.bucket_masks(2, 32, seed=3)
    assert list(masks) == SIX_BUCKETS
    for (low, high), bucket_set in masks.items():
        assert bucket_set.shape == (2, 1, 32, 32)
        ratios = hole_ratio(bucket_set)
        assert ((ratios > low) & (ratios <= high)).all()
    again = metrics.bucket_masks(2, 32, seed=3)
    assert all(torch.equal(masks[bucket], again[bucket]) for bucket in masks)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    by_default = metrics.evaluate_by_bucket({"mean": fill_with_mean}, images, seed=3)
    explicit = metrics.evaluate_by_bucket({"mean": fill_with_mean}, images, masks)
    assert torch.equal(by_default.scores, explicit.scores)
