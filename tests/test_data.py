"""The (image, mask) data sets: deterministic by sample index, held-out photos, folder policy, clear errors."""

import pytest
import torch
from PIL import Image

from pconv_lessons.data import SAMPLE_NAMES, SAMPLE_SPLITS, ImageFolderPairs, SamplePatches, make_pairs


def half_hole(size, seed):
    """A mask with its left half a hole; the seed picks nothing, so masks are easy to check."""
    mask = torch.ones(1, size, size)
    mask[..., : size // 2] = 0
    return mask


def test_splits_hold_out_whole_photos():
    train, test = set(SAMPLE_SPLITS["train"]), set(SAMPLE_SPLITS["test"])
    assert train.isdisjoint(test)
    assert train | test == set(SAMPLE_NAMES)


def test_sample_patches_are_a_pure_function_of_seed_and_index():
    first = SamplePatches(32, mask_fn=half_hole, seed=3)
    second = SamplePatches(32, mask_fn=half_hole, seed=3)
    image, mask = first[7]
    assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert torch.equal(image, second[7][0])
    assert not torch.equal(first[7][0], first[8][0])
    assert not torch.equal(image, SamplePatches(32, mask_fn=half_hole, seed=4)[7][0])


def _is_window_of(patch, photo):
    size = patch.shape[-1]
    corner = (photo == patch[:, :1, :1]).all(0)  # candidate top-left corners
    for top, left in corner.nonzero().tolist():
        if torch.equal(photo[:, top : top + size, left : left + size], patch):
            return True
    return False


def test_test_split_patches_come_from_the_held_out_photos():
    patches = SamplePatches(32, split="test", mask_fn=half_hole, scale=(1.0, 1.0))
    assert patches.names == SAMPLE_SPLITS["test"] and len(patches) == 3
    for index in range(3):
        image, _ = patches[index]
        # At scale 1 a test crop is a verbatim (unflipped) window of a held-out photo.
        assert any(_is_window_of(image, photo) for photo in patches.photos)


def test_each_pass_visits_every_photo_once():
    patches = SamplePatches(16, mask_fn=half_hole, scale=(1.0, 1.0))
    from pconv_lessons.data import _epoch_order

    order = [_epoch_order(patches.seed, len(patches), i) for i in range(2 * len(patches))]
    assert sorted(order[: len(patches)]) == list(range(len(patches)))
    assert sorted(order[len(patches) :]) == list(range(len(patches)))


def _write_images(folder, count, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        colour = (40 * i % 256, 100, 200)
        Image.new("RGB", size, colour).save(folder / f"img{i}.png")


def test_folder_resize_and_centre_crop_policy(tmp_path):
    _write_images(tmp_path / "nested" / "deeper", 3, size=(40, 30))  # W=40, H=30
    pairs = ImageFolderPairs(tmp_path, image_size=16, mask_fn=half_hole, train=False)
    assert len(pairs) == 3
    image, mask = pairs[0]
    assert image.shape == (3, 16, 16) and torch.equal(mask, half_hole(16, 0))
    # A flat colour survives resize + crop unchanged (up to 8-bit rounding).
    assert torch.allclose(image, image[:, :1, :1].expand_as(image), atol=1e-6)


def test_corrupt_image_error_names_the_file(tmp_path):
    _write_images(tmp_path, 1)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    pairs = ImageFolderPairs(tmp_path, image_size=16, mask_fn=half_hole)
    with pytest.raises(ValueError, match="broken.jpg"):
        for index in range(len(pairs)):
            pairs[index]


def test_corrupt_image_skipped_with_counted_warning_when_asked(tmp_path):
    _write_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"garbage")
    pairs = ImageFolderPairs(tmp_path, image_size=16, mask_fn=half_hole, skip_corrupt=True)
    with pytest.warns(UserWarning, match=r"broken.png \(1 skipped so far\)"):
        images = [pairs[index][0] for index in range(len(pairs))]
    assert len(images) == 3 and {p.name for p in pairs.skipped} == {"broken.png"}


def test_all_corrupt_is_an_error_not_a_loop(tmp_path):
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="none of the 1 image files"):
        ImageFolderPairs(tmp_path, image_size=16, mask_fn=half_hole, skip_corrupt=True)[0]


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files"):
        ImageFolderPairs(tmp_path, image_size=16)
    with pytest.raises(ValueError, match="image folder not found"):
        make_pairs(str(tmp_path / "absent"), 16)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="split"):
        SamplePatches(32, split="val")
    with pytest.raises(ValueError, match="larger than sample photo"):
        SamplePatches(400, split="test", mask_fn=half_hole)
    wrong_mask = SamplePatches(16, mask_fn=lambda size, seed: torch.ones(1, 8, 8))
    with pytest.raises(ValueError, match="mask_fn must return"):
        wrong_mask[0]


def test_mask_bank_covers_every_bucket_and_keeps_hole_ratios():
    from pconv_lessons.data import MaskBank
    from pconv_lessons.masks import PAPER_BUCKETS, hole_ratio

    bank = MaskBank("free_form", 32, per_bucket=4)
    assert len(bank) == 4 * len(PAPER_BUCKETS) and bank.masks.dtype == torch.bool
    stored = hole_ratio(bank.masks.float())
    for index, (low, high) in enumerate(PAPER_BUCKETS):
        assert ((stored[4 * index : 4 * index + 4] > low) & (stored[4 * index : 4 * index + 4] <= high)).all()
    drawn = torch.stack([bank(32, seed) for seed in range(40)])
    assert drawn.shape == (40, 1, 32, 32) and drawn.dtype == torch.float32
    # Rotations and flips keep each mask's hole ratio, so every drawn ratio is one of the stored ones.
    assert all(torch.isclose(stored, ratio).any() for ratio in hole_ratio(drawn))
    assert torch.equal(bank(32, 5), bank(32, 5))
    with pytest.raises(ValueError, match="holds 32"):
        bank(16, 0)


def test_brick_texture_halves_do_not_overlap_and_random_crops_are_windows_of_the_source():
    from pconv_lessons.data import brick_texture, random_crops

    train, test = brick_texture()
    assert train.shape == test.shape == (3, 256, 128) and 0 <= float(train.min()) and float(test.max()) <= 1
    assert torch.equal(train[0], train[1]) and not torch.equal(train, test)  # grey replicated; two different halves
    source = torch.arange(2 * 9 * 7, dtype=torch.float32).view(2, 9, 7)
    crops = random_crops(source, 5, 4, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    tops, lefts = torch.randint(6, (5,), generator=generator), torch.randint(4, (5,), generator=generator)
    for crop, top, left in zip(crops, tops.tolist(), lefts.tolist()):
        assert torch.equal(crop, source[:, top : top + 4, left : left + 4])
    with pytest.raises(ValueError, match="size must be an int in"):
        random_crops(source, 1, 8, generator)
    with pytest.raises(ValueError, match=r"source must be a \(C, H, W\) tensor"):
        random_crops(source[0], 1, 2, generator)


def test_brick_data_trains_on_augmented_crops_of_the_left_half_and_tests_on_the_right_half():
    from pconv_lessons.data import TexturePatches, brick_texture, make_pairs

    train_half, test_half = brick_texture()
    train = make_pairs("brick", 64, seed=0)
    test = make_pairs("brick", 64, seed=0, split="test")
    assert isinstance(train, TexturePatches) and train.train and not test.train
    image, mask = train[3]
    assert image.shape == (3, 64, 64) and mask.shape == (1, 64, 64) and 0 <= float(image.min()) <= float(image.max()) <= 1
    assert torch.equal(train[3][0], image)  # a pure function of (seed, index)
    # Test crops are plain windows of the right half.
    crop = test[5][0]
    windows = test_half.unfold(1, 64, 1).unfold(2, 64, 1)  # (3, 193, 65, 64, 64)
    assert bool((windows - crop[:, None, None]).abs().amax(dim=(0, 3, 4)).eq(0).any())
    # Without scaling or rotation a training crop is a window of the left half (or its mirror image).
    plain = make_pairs("brick-plain", 64, seed=0)
    plain_windows = train_half.unfold(1, 64, 1).unfold(2, 64, 1)
    for index in range(4):
        crop = plain[index][0]
        found = [bool((plain_windows - c[:, None, None]).abs().amax(dim=(0, 3, 4)).lt(1e-6).any())
                 for c in (crop, crop.flip(-1))]
        assert any(found)
    # With augmentation most crops are not windows of the left half: rotated and rescaled.
    rotated = [bool((plain_windows - train[i][0][:, None, None]).abs().amax(dim=(0, 3, 4)).lt(1e-3).any())
               for i in range(4)]
    assert not any(rotated)
    with pytest.raises(ValueError, match="split must be"):
        TexturePatches(64, split="val")
    with pytest.raises(ValueError, match="image_size must be at most 128"):
        TexturePatches(200)
