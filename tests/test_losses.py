"""The PConv loss terms against straightforward formulas, VGG16 loading from local files, and the edge cases."""

import itertools
import warnings

import pytest
import torch
import torchvision

from pconv_lessons.data import sample_images
from pconv_lessons.losses import (
    PAPER_WEIGHTS,
    InpaintingLoss,
    VGG16Features,
    gram_matrix,
    vgg16_cache_path,
)
from pconv_lessons.models import PConvUNet


def random_vgg(seed=0):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return VGG16Features(weights=None)


@pytest.fixture(scope="module")
def vgg():
    return random_vgg()


def batch(n=2, size=24, seed=1):
    generator = torch.Generator().manual_seed(seed)
    output = torch.rand(n, 3, size, size, generator=generator)
    target = torch.rand(n, 3, size, size, generator=generator)
    mask = torch.ones(n, 1, size, size)
    mask[0, :, 5:15, 3:12] = 0
    mask[1, :, 12:, 16:] = 0
    mask[1, :, 2, 2] = 0  # a one-pixel hole
    return output, target, mask


# ---- independent, straightforward versions of each term (float64, loops where the definition is a loop) ----


def plain_l1_terms(output, target, mask):
    diff = (output.double() - target.double()).abs()
    known = mask.double().expand_as(diff)
    count = diff.numel()
    return (diff * known).sum() / count, (diff * (1 - known)).sum() / count


def plain_gram(feature):
    n, c, h, w = feature.shape
    flat = feature.double().reshape(n, c, h * w)
    return torch.einsum("nik,njk->nij", flat, flat) / (c * h * w)


def plain_feature_terms(extractor, output, target, mask):
    known = mask.double()
    comp = (known * target.double() + (1 - known) * output.double()).float()
    with torch.no_grad():
        f_out, f_comp, f_gt = extractor(output), extractor(comp), extractor(target)
    perceptual = style = 0.0
    for a, b, g in zip(f_out, f_comp, f_gt):
        perceptual += (a.double() - g.double()).abs().mean() + (b.double() - g.double()).abs().mean()
        style += (plain_gram(a) - plain_gram(g)).abs().mean() + (plain_gram(b) - plain_gram(g)).abs().mean()
    return perceptual, style


def plain_tv(output, target, mask):
    """Loop over pixel pairs; a pixel is in P when a hole pixel lies in its 3×3 neighbourhood."""
    n, c, h, w = output.shape
    comp = mask * target + (1 - mask) * output
    hole = mask[:, 0] == 0

    def in_p(b, i, j):
        return bool(hole[b, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].any())

    total = 0.0
    for b, i, j in itertools.product(range(n), range(h), range(w)):
        if not in_p(b, i, j):
            continue
        if j + 1 < w and in_p(b, i, j + 1):
            total += (comp[b, :, i, j + 1].double() - comp[b, :, i, j].double()).abs().sum()
        if i + 1 < h and in_p(b, i + 1, j):
            total += (comp[b, :, i + 1, j].double() - comp[b, :, i, j].double()).abs().sum()
    return total / (n * c * h * w)


def test_each_term_matches_its_plain_formula(vgg):
    output, target, mask = batch()
    terms = InpaintingLoss(vgg)(output, target, mask)
    valid, hole = plain_l1_terms(output, target, mask)
    perceptual, style = plain_feature_terms(vgg, output, target, mask)
    expected = {"valid": valid, "hole": hole, "perceptual": perceptual, "style": style, "tv": plain_tv(output, target, mask)}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(float(value), rel=1e-4, abs=1e-7), name
        assert terms[name].dtype == torch.float32 and terms[name].dim() == 0
    assert terms["style"] > 0 and terms["tv"] > 0


def test_total_is_the_weighted_sum_and_weights_are_configurable(vgg):
    output, target, mask = batch()
    weights = {"valid": 2.0, "hole": 3.0, "perceptual": 0.5, "style": 7.0, "tv": 0.25}
    for loss, used in [(InpaintingLoss(vgg), dict(PAPER_WEIGHTS)), (InpaintingLoss(vgg, weights), weights)]:
        terms = loss(output, target, mask)
        expected = sum(used[name] * terms[name].item() for name in used)
        assert terms["total"].item() == pytest.approx(expected, rel=1e-5)
    assert dict(PAPER_WEIGHTS) == {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}
    assert InpaintingLoss(vgg, {"style": 250.0}).weights["hole"] == 6.0
    with pytest.raises(ValueError, match="unknown loss weight"):
        InpaintingLoss(vgg, {"content": 1.0})


def test_every_term_but_tv_is_zero_when_output_is_the_target(vgg):
    _, target, mask = batch()
    terms = InpaintingLoss(vgg)(target.clone(), target, mask)
    for name in ("valid", "hole", "perceptual", "style"):
        assert terms[name].item() == 0.0, name
    # TV is not a distance to the target: it measures I_comp's own variation around the hole, so it stays at
    # the target's TV there (non-zero, since the random target varies) ...
    assert terms["tv"].item() == pytest.approx(float(plain_tv(target, target, mask)), rel=1e-5)
    assert terms["tv"] > 0
    # ... and is zero for a flat image.
    flat = torch.full_like(target, 0.3)
    assert InpaintingLoss(vgg)(flat, flat, mask)["tv"].item() == 0.0


def test_tv_only_sees_the_dilated_hole(vgg):
    output, target, mask = batch()
    changed = target.clone()
    changed[0, :, 20:, :] = torch.rand(3, 4, 24)  # far from image 0's hole (rows 5-14), inside image 1's own known area
    changed[1] = target[1]
    loss = InpaintingLoss(vgg)
    assert loss(output, target, mask)["tv"].item() == pytest.approx(loss(output, changed, mask)["tv"].item(), rel=1e-6)


@pytest.mark.parametrize("kind", ["all_hole", "no_hole"])
def test_all_hole_and_no_hole_masks_give_finite_terms(vgg, kind):
    output, target, _ = batch()
    mask = torch.zeros(2, 1, 24, 24) if kind == "all_hole" else torch.ones(2, 1, 24, 24)
    output.requires_grad_(True)
    terms = InpaintingLoss(vgg)(output, target, mask)
    assert all(torch.isfinite(value) for value in terms.values())
    terms["total"].backward()
    assert torch.isfinite(output.grad).all()
    if kind == "no_hole":
        assert terms["hole"].item() == 0.0 and terms["tv"].item() == 0.0
    else:
        assert terms["valid"].item() == 0.0 and terms["hole"] > 0


def test_three_channel_mask_equals_single_channel(vgg):
    output, target, mask = batch()
    loss = InpaintingLoss(vgg)
    one = loss(output, target, mask)
    three = loss(output, target, mask.expand(-1, 3, -1, -1))
    for name in one:
        assert one[name].item() == pytest.approx(three[name].item(), rel=1e-6), name


def test_bf16_autocast_gives_finite_terms_close_to_float32(vgg):
    output, target, mask = batch(size=32)
    loss = InpaintingLoss(vgg)
    reference = loss(output, target, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = loss(output, target, mask)
    for name in reference:
        assert torch.isfinite(terms[name]) and terms[name].dtype == torch.float32, name
        assert terms[name].item() == pytest.approx(reference[name].item(), rel=0.1, abs=1e-6), name


def test_gram_matrix_is_float32_under_autocast_where_float16_overflows():
    features = torch.full((1, 4, 32, 32), 300.0)  # each entry sums 1024 products of 9e4: far beyond float16's 65504
    naive = torch.bmm(features.half().flatten(2), features.half().flatten(2).transpose(1, 2))
    assert torch.isinf(naive).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features.bfloat16())
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, torch.full((1, 4, 4), 300.0**2 * 1024 / (4 * 32 * 32)))
    random_features = torch.randn(3, 5, 7, 6)
    torch.testing.assert_close(gram_matrix(random_features).double(), plain_gram(random_features))


@pytest.mark.parametrize(
    "output, target, mask, message",
    [
        (torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 20), torch.ones(2, 1, 24, 24), "does not match target shape"),
        (torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24), torch.ones(2, 2, 24, 24), "1 or 3 channel"),
        (torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24), torch.ones(2, 1, 20, 24), "spatial size"),
        (torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24), torch.full((2, 1, 24, 24), 255.0), "values must lie"),
        (torch.rand(2, 1, 24, 24), torch.rand(2, 1, 24, 24), torch.ones(2, 1, 24, 24), "RGB"),
    ],
)
def test_bad_input_is_rejected(vgg, output, target, mask, message):
    with pytest.raises(ValueError, match=message):
        InpaintingLoss(vgg)(output, target, mask)


# ---- VGG16Features ----


def test_random_init_is_announced_frozen_and_stays_in_eval(vgg):
    with pytest.warns(UserWarning, match="random-init VGG16"):
        VGG16Features(weights=None)
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training and not any(m.training for m in vgg.modules())
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    pools = vgg(images)
    assert [tuple(p.shape) for p in pools] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4)]
    sum(p.sum() for p in pools).backward()
    assert images.grad.abs().sum() > 0


def needed_state(seed=3):
    """A state dict with only the ``features.*`` entries VGG16Features needs, random but fixed."""
    torch.manual_seed(seed)
    return {f"features.{key}": torch.randn_like(value) * 0.05 for key, value in random_vgg(seed).features.state_dict().items()}


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_imagenet_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = vgg16_cache_path()
    assert path == tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    state = needed_state()
    torch.save(state, path)
    model = VGG16Features(weights="imagenet")
    assert model.weights_source == "imagenet"
    for key, value in model.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"]), key
    # The same weights in torchvision's own VGG16 give the same pool1-3 after ImageNet normalisation.
    reference = torchvision.models.vgg16(weights=None).features[:17].eval()
    reference.load_state_dict({key.removeprefix("features."): value for key, value in state.items()})
    images = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (images - mean) / std
    expected = []
    with torch.no_grad():
        for index, layer in enumerate(reference):
            x = layer(x)
            if isinstance(layer, torch.nn.MaxPool2d):
                expected.append(x.clone())
        found = model(images)
    for a, b in zip(found, expected):
        torch.testing.assert_close(a, b)


def test_weights_from_a_path_accept_extra_entries(tmp_path):
    state = needed_state() | {"classifier.0.weight": torch.zeros(2, 2)}
    path = tmp_path / "my_vgg.pth"
    torch.save(state, path)
    model = VGG16Features(weights=path)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])


def test_missing_imagenet_weights_without_network_say_where_to_put_them(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"could not download.*vgg16-397923af\.pth.*weights=None"):
        VGG16Features(weights="imagenet")


def test_missing_corrupt_or_incomplete_weight_files_are_named(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ValueError, match="not found: .*nowhere.pth"):
        VGG16Features(weights=missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="cannot read VGG16 weights file .*corrupt.pth"):
        VGG16Features(weights=corrupt)
    incomplete = tmp_path / "incomplete.pth"
    torch.save({k: v for k, v in needed_state().items() if not k.startswith("features.14")}, incomplete)
    with pytest.raises(ValueError, match=r"incomplete.pth lacks \['features.14.bias', 'features.14.weight'\]"):
        VGG16Features(weights=incomplete)


# ---- the whole loss trains a model ----


def sample_patches(n, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    photos = list(sample_images(["astronaut", "chelsea", "coffee", "rocket"]).values())
    patches = []
    for index in range(n):
        photo = photos[index % len(photos)]
        top = int(torch.randint(0, photo.shape[1] - size, (1,), generator=generator))
        left = int(torch.randint(0, photo.shape[2] - size, (1,), generator=generator))
        patches.append(photo[:, top : top + size, left : left + size])
    return torch.stack(patches)


def test_small_unet_overfits_one_batch_of_sample_patches(vgg):
    torch.manual_seed(0)
    images = sample_patches(4, 32)
    mask = torch.ones(4, 1, 32, 32)
    mask[:, :, 8:20, 10:24] = 0
    mask[1:3, :, 22:28, 2:14] = 0
    model = PConvUNet(layer_size=4, base_channels=8)
    loss_fn = InpaintingLoss(vgg)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = last = None
    for step in range(200):
        optimizer.zero_grad()
        terms = loss_fn(model(images, mask), images, mask)
        terms["total"].backward()
        optimizer.step()
        first = first or {name: value.item() for name, value in terms.items()}
        last = {name: value.item() for name, value in terms.items()}
        # The total falls 5× within a few steps by learning the colours of the known area; the hole term
        # falling 5× as well shows the model learns to fill these holes.
        if last["total"] <= first["total"] / 5 and last["hole"] <= first["hole"] / 5:
            break
    assert last["total"] <= first["total"] / 5, f"total fell only from {first['total']:.3f} to {last['total']:.3f}"
    assert last["hole"] <= first["hole"] / 5, f"hole term fell only from {first['hole']:.4f} to {last['hole']:.4f}"


@pytest.mark.gpu
def test_cuda_bf16_loss_is_finite_and_matches_cpu(vgg):
    output, target, mask = batch(size=64)
    reference = InpaintingLoss(vgg)(output, target, mask)
    loss = InpaintingLoss(random_vgg().cuda())
    with torch.backends.cudnn.flags(allow_tf32=False):
        terms = loss(output.cuda(), target.cuda(), mask.cuda())
    for name in reference:
        assert terms[name].item() == pytest.approx(reference[name].item(), rel=1e-3, abs=1e-7), name
    with torch.autocast("cuda", dtype=torch.bfloat16):
        terms = loss(output.cuda().requires_grad_(), target.cuda(), mask.cuda())
    assert all(torch.isfinite(value) for value in terms.values())
