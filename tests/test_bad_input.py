"""Bad input gets a clear error or the right answer (issue 15): images, tensors, numerics, widgets.

Each test names the item of the issue it covers; every one of them failed on the code before the fix.
"""

import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pconv_lessons import metrics
from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.data import ImageFolderPairs, SamplePatches, image_files, load_image, make_pairs, to_tensor
from pconv_lessons.layers import PartialConv2d
from pconv_lessons.layers.ffc import FourierUnit
from pconv_lessons.losses import InpaintingLoss, VGG16Features, hinge_d_loss, hinge_g_loss, total_variation_in_region
from pconv_lessons.masks import generate
from pconv_lessons.models import GatedGenerator, LamaGenerator, PConvUNet, SNPatchDiscriminator, composite
from pconv_lessons.widgets.canvas import MaskCanvas, clip_segment
from pconv_lessons.widgets.controller import PointerController


@pytest.fixture(scope="module")
def vgg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return VGG16Features(weights=None)


def batch(n=2, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, size, size, generator=generator)
    mask = torch.ones(n, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 0
    return image, mask


def small_models():
    torch.manual_seed(0)
    return {
        "pconv": PConvUNet(layer_size=3, base_channels=4),
        "gated": GatedGenerator(base_channels=4),
        "lama": LamaGenerator(ngf=4, n_blocks=1),
    }


# ------------------------------------------------------------------------------- 1. images load right


def test_16_bit_png_is_scaled_by_65535(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    loaded = load_image(tmp_path / "ramp.png")  # before: convert("RGB") clipped, 99.6 % of pixels read 1.0
    assert loaded.shape == (3, 32, 32)
    assert torch.allclose(loaded[0], torch.from_numpy(ramp / 65535.0).float(), atol=1e-6)
    assert torch.equal(loaded[0], loaded[2]) and float((loaded == 1.0).float().mean()) < 0.01


@pytest.mark.parametrize("high", [1.0, 4.0])
def test_float_tiff_is_scaled_by_its_real_range(tmp_path, high):
    values = np.linspace(0, high, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "float.tif")
    loaded = load_image(tmp_path / "float.tif")  # before: 0..255 clipping (75 % saturated at high = 4)
    assert torch.allclose(loaded[1], torch.from_numpy(values / high), atol=1e-6)


def test_float_tiff_with_nan_names_the_file(tmp_path):
    values = np.zeros((8, 8), dtype=np.float32)
    values[2, 2] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="nan.tif.*NaN"):
        load_image(tmp_path / "nan.tif")


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)  # 2 rows × 3 columns, one red corner
    pixels[0, 0] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif)
    loaded = load_image(tmp_path / "phone.png")
    upright = np.rot90(pixels, k=-1)  # clockwise: 3 rows × 2 columns, red corner top-right
    assert loaded.shape == (3, 3, 2)
    assert torch.equal(loaded, to_tensor(np.ascontiguousarray(upright)))


def test_decompression_bomb_names_the_file_and_skip_corrupt_skips_it(tmp_path, monkeypatch):
    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "good.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64² > 2 × 1000: Pillow calls it a bomb
    with pytest.raises(ValueError, match="bomb.png"):
        load_image(tmp_path / "bomb.png")  # before: PIL's DecompressionBombError escaped
    with pytest.raises(ValueError, match="bomb.png"):
        [ImageFolderPairs(tmp_path, image_size=8, train=False)[i] for i in range(2)]
    pairs = make_pairs(str(tmp_path), 8, split="test", skip_corrupt=True)  # what the trainer's --skip-corrupt builds
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        images = [pairs[i][0] for i in range(4)]
    assert pairs.skipped == {tmp_path / "bomb.png"}
    assert all(torch.allclose(image[:, 0, 0], torch.tensor([10, 20, 30]) / 255.0) for image in images)


def test_symlinked_sub_folders_are_followed_and_loops_end(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere" / "more"
    (root / "a").mkdir(parents=True)
    elsewhere.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "a" / "one.png")
    Image.new("RGB", (8, 8)).save(elsewhere / "two.png")
    os.symlink(elsewhere, root / "linked")
    os.symlink(root, root / "a" / "loop")  # a link back to the top: must not recurse forever
    os.symlink(elsewhere, root / "linked_again")  # the same folder twice: its files once
    found = image_files(root)  # before: rglob skipped every symlinked folder
    assert [path.name for path in found] == ["one.png", "two.png"]
    assert len(ImageFolderPairs(root, image_size=8)) == 2


def test_to_tensor_scales_16_bit_and_rejects_out_of_range_floats():
    assert float(to_tensor(np.full((2, 2, 3), 65535, dtype=np.uint16)).max()) == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\].*max 255"):
        to_tensor(np.full((2, 2, 3), 255.0))
    with pytest.raises(ValueError, match="dtype int64"):
        to_tensor(np.zeros((2, 2, 3), dtype=np.int64))


# ------------------------------------------------------------------------- 2. hole pixels are never read


def _with_holes(image, mask, value):
    return torch.where(mask.bool(), image, torch.full_like(image, value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e30])
def test_partial_conv_never_reads_hole_pixels(value):
    torch.manual_seed(0)
    x, mask = torch.randn(2, 3, 12, 12), batch(2, 12)[1]
    for layer, layer_mask in ((PartialConv2d(3, 4, 3, padding=1), mask),
                              (PartialConv2d(3, 4, 3, padding=1, multi_channel=True), mask.expand(-1, 3, -1, -1))):
        clean = layer(x * layer_mask, layer_mask)[0]
        assert torch.equal(layer(_with_holes(x, layer_mask, value), layer_mask)[0], clean)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["pconv", "gated", "lama"])
def test_models_never_read_hole_pixels(name, value):
    model = small_models()[name].eval()
    image, mask = batch()
    with torch.no_grad():
        clean = model(image * mask, mask)
        dirty = model(_with_holes(image, mask, value), mask)  # before: NaN everywhere
    assert torch.isfinite(dirty).all() and torch.equal(dirty, clean)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["pconv", "gated", "lama"])
def test_cuda_bf16_autocast_never_reads_hole_pixels(name):
    model = small_models()[name].cuda().eval().to(memory_format=torch.channels_last)
    image, mask = (t.cuda().to(memory_format=torch.channels_last) for t in batch())
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        clean = model(image * mask, mask)
        dirty = model(_with_holes(image, mask, float("nan")), mask)
    assert torch.isfinite(dirty).all() and torch.equal(dirty, clean)


def test_sketch_is_read_inside_the_hole_only():
    torch.manual_seed(0)
    model = GatedGenerator(base_channels=4, sketch=True).eval()
    image, mask = batch()
    sketch = torch.zeros(2, 1, 32, 32)
    sketch[..., 10, :] = 1.0  # a stroke across known pixels and the hole
    dirty = torch.where(mask.bool(), torch.full_like(sketch, float("nan")), sketch)
    with torch.no_grad():
        assert torch.equal(model(image, mask, dirty), model(image, mask, sketch * (1 - mask)))  # before: NaN
        with pytest.raises(ValueError, match="sketch must be finite"):
            model(image, mask, torch.where(mask.bool(), sketch, torch.full_like(sketch, float("nan"))))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_baselines_and_composite_never_read_hole_pixels(value):
    image, mask = batch()
    dirty = _with_holes(image, mask, value)
    assert torch.equal(fill_with_mean(dirty, mask), fill_with_mean(image * mask, mask))  # before: NaN
    assert torch.equal(biharmonic(dirty, mask), biharmonic(image * mask, mask))
    prediction = torch.rand_like(image)
    assert torch.equal(composite(prediction, dirty, mask), composite(prediction, image, mask))


@pytest.mark.parametrize("name", ["pconv", "gated", "lama"])
def test_nan_in_known_pixels_is_a_clear_error(name):
    image, mask = batch()
    image[0, 1, 0, 0] = float("nan")  # (0, 0) is a known pixel
    with pytest.raises(ValueError, match="image must be finite in its known pixels"):
        small_models()[name](image, mask)
    with pytest.raises(ValueError, match="image must be finite"):
        fill_with_mean(image, mask)
    with pytest.raises(ValueError, match="x must be finite"):
        PartialConv2d(3, 2, 3)(image, mask)


# -------------------------------------------------------------------------------- 3. ranges and dtypes


def test_images_outside_unit_range_are_rejected(vgg):
    image, mask = batch(size=16)
    eight_bit = image * 255
    with pytest.raises(ValueError, match=r"pred's pixel values must lie in \[0, 1\].*divide 8-bit"):
        metrics.psnr(eight_bit, eight_bit * 0.9)  # before: PSNR −31.7 dB for near-identical images
    with pytest.raises(ValueError, match="target"):
        metrics.ssim(image, eight_bit)
    assert torch.isfinite(metrics.psnr(eight_bit * 0.9, eight_bit, data_range=255)).all()
    with pytest.raises(ValueError, match=r"images's pixel values must lie in \[0, 1\]"):
        metrics.evaluate_by_bucket({"mean": fill_with_mean}, eight_bit, {(0.1, 0.2): mask[:, :, :, :]})
    with pytest.raises(ValueError, match=r"target's pixel values must lie in \[0, 1\]"):
        InpaintingLoss(vgg)(image, eight_bit, mask)
    for model in small_models().values():
        with pytest.raises(ValueError, match=r"image's known pixel values must lie in \[0, 1\]"):
            model(eight_bit, mask)


def test_float64_works_end_to_end_or_is_rejected_at_the_input_check(vgg):
    image, mask = batch()
    for model in small_models().values():
        model.eval()
        with pytest.raises(ValueError, match="image has dtype torch.float64 but .* parameters are torch.float32"):
            model(image.double(), mask.double())  # before: RuntimeError deep inside a conv
        with torch.no_grad():
            single = model(image, mask)
            double = model.double()(image.double(), mask.double())
        assert double.dtype == torch.float64 and torch.allclose(double.float(), single, atol=1e-5)
    with pytest.raises(ValueError, match="output has dtype torch.float64"):
        InpaintingLoss(vgg)(image.double(), image.double(), mask.double())
    assert metrics.psnr(image.double(), (image * 0.9).double()).dtype == torch.float64


def test_partial_conv_scale_is_float64_for_float64_input():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 2, 3, padding=1).double()
    x = torch.rand(1, 3, 9, 9, dtype=torch.float64)
    mask = (torch.rand(1, 1, 9, 9) > 0.4).double()
    known = F.conv2d(mask, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=1)  # exact counts
    reference = F.conv2d(x * mask, layer.weight, padding=1) * torch.where(known > 0, 9.0 / known, 0.0)
    reference = reference + layer.bias.view(1, -1, 1, 1) * (known > 0)
    out, _ = layer(x, mask)
    assert out.dtype == torch.float64
    assert torch.allclose(out, reference, rtol=1e-13, atol=1e-14)  # before: the scale in float32, 7e-8 off


def test_fourier_unit_keeps_float64_and_passes_gradcheck():
    torch.manual_seed(0)
    unit = FourierUnit(2, 2).double().eval()
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert unit(x).dtype == torch.float64
    assert torch.autograd.gradcheck(unit, (x,))  # before: float32 FFTs, gradcheck failed


def test_batch_size_zero_gives_an_empty_result_or_a_clear_error(vgg):
    image, mask = batch(n=0)
    for model in small_models().values():
        assert model(image, mask).shape == (0, 3, 32, 32)  # before: aminmax RuntimeError
    assert PartialConv2d(3, 2, 3)(image, mask)[0].shape == (0, 2, 30, 30)
    for metric in (metrics.l1, metrics.psnr, metrics.ssim):  # before: IndexError in ssim
        assert metric(image, image).shape == (0,)
    assert fill_with_mean(image, mask).shape == biharmonic(image, mask).shape == (0, 3, 32, 32)
    with pytest.raises(ValueError, match="output must hold at least one image, got batch size 0"):
        InpaintingLoss(vgg)(image, image, mask)
    with pytest.raises(ValueError, match="images must hold at least one image"):
        metrics.evaluate_by_bucket({"mean": fill_with_mean}, image)
    with pytest.raises(ValueError, match="image must hold at least one image"):
        total_variation_in_region(image, mask)  # before: 0 / 0 = NaN
    with pytest.raises(ValueError, match="fake_scores must be a non-empty"):
        hinge_g_loss(torch.zeros(0, 1, 2, 2))  # before: NaN
    with pytest.raises(ValueError, match="real_scores must be a non-empty"):
        hinge_d_loss(torch.zeros(0), torch.zeros(3))


def test_loss_on_images_too_small_for_vgg_is_a_clear_error(vgg):
    image, mask = batch(size=4)
    with pytest.raises(ValueError, match=r"at least 8×8 .* got \(4, 4\)"):  # before: a MaxPool RuntimeError
        InpaintingLoss(vgg)(image, image, mask)
    image, mask = batch(size=8)
    assert torch.isfinite(InpaintingLoss(vgg)(image, image, mask)["total"])


def test_sizes_as_floats_are_rejected_and_0d_tensors_accepted():
    with pytest.raises(ValueError, match=r"size must be an int or a pair \(H, W\) of ints.*got 32.0 \(float\)"):
        generate("box", 1, 32.0)  # before: TypeError 'float' object is not iterable
    assert torch.equal(generate("box", 2, torch.tensor(32), seed=1), generate("box", 2, 32, seed=1))
    with pytest.raises(ValueError, match="image_size must be an int, got 32.0"):
        SamplePatches(32.0)


# ------------------------------------------------------------------ 4. constructors check their arguments


@pytest.mark.parametrize(
    "build, named",
    [
        (lambda: PConvUNet(3, 2.5), "base_channels must be an int, got 2.5"),
        (lambda: PConvUNet(3, "8"), "base_channels must be an int, got '8'"),
        (lambda: PConvUNet(40, 8), r"layer_size .* must be an int in \[1, 12\], got 40"),
        (lambda: GatedGenerator("8"), "base_channels must be an int, got '8'"),
        (lambda: GatedGenerator(8, rates=(0,)), "dilation rate in rates must be an int >= 1, got 0"),
        (lambda: SNPatchDiscriminator(0), "disc_channels in the trainer.* >= 1, got 0"),
        (lambda: LamaGenerator(2.5), "ngf must be an int, got 2.5"),
        (lambda: LamaGenerator(8, n_blocks=-1), "n_blocks must be an int >= 0, got -1"),
    ],
)
def test_constructors_check_their_arguments(build, named):
    with pytest.raises(ValueError, match=named):  # before: accepted, or an unrelated error from inside torch
        build()


NOT_TENSORS = {
    "a PIL image": lambda: Image.new("RGB", (32, 32)),
    "a NumPy array": lambda: np.zeros((1, 3, 32, 32), np.float32),
    "a nested list": lambda: torch.zeros(1, 3, 32, 32).tolist(),
}


@pytest.mark.parametrize("given", sorted(NOT_TENSORS))
@pytest.mark.parametrize("argument", ["image", "mask"])
@pytest.mark.parametrize("name", ["pconv", "gated", "lama", "discriminator"])
def test_every_forward_names_the_argument_that_is_not_a_tensor(name, argument, given):
    # issue 19: PConvUNet(PIL image, mask) raised AttributeError "'Image' object has no attribute 'shape'"
    model = {**small_models(), "discriminator": SNPatchDiscriminator(4)}[name]
    image, mask = batch(1)
    inputs = {"image": image, "mask": mask, argument: NOT_TENSORS[given]()}
    with pytest.raises((ValueError, TypeError), match=rf"^{argument} must be a torch.Tensor .*got"):
        model(inputs["image"], inputs["mask"])


def _mask_rng(seed, index):
    from pconv_lessons.masks import mask_rng

    return mask_rng(seed, index)


def _mask_bank(**changes):
    from pconv_lessons.data import MaskBank

    return MaskBank(**{"kind": "box", "size": 16, "per_bucket": 1, **changes})


def _in_bucket(max_rounds):
    from pconv_lessons.masks import generate_in_bucket

    return generate_in_bucket("box", 2, 32, (0.1, 0.3), seed=0, max_rounds=max_rounds)


@pytest.mark.parametrize(
    "call, named",
    [  # issue 19; before: an error from inside torch or Python, a wrong argument blamed, or nothing at all
        (lambda: generate("box", 1, 16, seed=2**64, backend="torch"),  # "Overflow when unpacking long long"
         r"seed must be below 2\*\*64 with backend='torch'.*got 18446744073709551616"),
        (lambda: _in_bucket(0), "max_rounds must be an int >= 1, got 0"),  # RuntimeError "… in 0 rounds"
        (lambda: _in_bucket(2.5), r"max_rounds must be an int, got 2.5"),  # "'float' object cannot be interpreted"
        (lambda: _mask_bank(buckets=[]), r"buckets must hold at least one .*got \[\]"),  # torch.cat(): expected …
        (lambda: _mask_bank(per_bucket=1.5), "per_bucket must be an int, got 1.5"),
        (lambda: _mask_bank(kind="box,nope"), r"mask kind 'box,nope': unknown mask family \['nope'\]"),
        (lambda: _mask_rng(-1, 0), "seed must be an int ≥ 0, got -1"),  # NumPy's "expected non-negative integer"
        (lambda: _mask_rng(0, -1), "index must be an int ≥ 0, got -1"),  # accepted: stream 2¹²⁸ − JUMP
    ],
)
def test_mask_arguments_are_checked_and_named(call, named):
    with pytest.raises(ValueError, match=named):
        call()


# ---------------------------------------------------------------------------------------------- 5. widgets


@pytest.mark.parametrize("far", [1e12, 1e300, 1.7e308])
def test_stroke_with_huge_coordinates_paints_the_visible_part(far):
    canvas = MaskCanvas(20, 30, brush_size=3)
    canvas.stroke([(-far, 10.0), (far, 10.0)])  # before (1e300): nothing painted
    expected = torch.ones(1, 1, 20, 30)
    expected[..., 9:12, :] = 0
    assert torch.equal(canvas.mask, expected)
    canvas.clear()
    canvas.stroke([(-far, -far), (far, far)])  # the diagonal through the origin
    reference = MaskCanvas(20, 30, brush_size=3)
    reference.stroke([(-40.0, -40.0), (40.0, 40.0)])
    assert torch.equal(canvas.mask, reference.mask)


def test_clip_segment_is_exact():
    assert clip_segment((-1e308, 5.0), (1e308, 5.0), (0, 0, 10, 10)) == ((0.0, 5.0), (10.0, 5.0))
    assert clip_segment((-1e308, 50.0), (1e308, 50.0), (0, 0, 10, 10)) is None


def test_infinite_brush_is_a_clear_error_and_leaves_no_undo_step():
    canvas = MaskCanvas(10, 10)
    for brush in (float("inf"), float("nan"), 0, -2):
        with pytest.raises(ValueError, match="brush_size must be a positive finite number"):
            canvas.stroke([(3, 3)], brush_size=brush)  # before (inf): OverflowError after an empty undo step
    assert not canvas.can_undo
    with pytest.raises(ValueError, match="brush_size"):
        PointerController(canvas, brush_size=float("inf"))


def test_nan_pointer_never_leaves_the_controller_drawing():
    canvas = MaskCanvas(10, 10, brush_size=1)
    controller = PointerController(canvas)
    with pytest.raises(ValueError, match="finite"):
        controller.down(float("nan"), 2.0)  # before: stuck "drawing" from (nan, 2)
    assert not controller.drawing and not canvas.can_undo
    controller.down(1, 1)
    with pytest.raises(ValueError, match="finite"):
        controller.move(2, float("nan"))
    assert not controller.drawing
    controller.move(5, 5)  # no longer drawing: ignored
    assert float(canvas.hole_ratio) == 0.01
