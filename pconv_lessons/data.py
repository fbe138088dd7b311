"""Images for the course: the colour photos scikit-image and matplotlib ship (no download needed), image-file loading,
and the (image, mask) training pairs built from them or from any folder of images.

Images are float tensors shaped (3, H, W) with values in [0, 1]; masks (1, H, W) with 1 = known, 0 = hole.
Sample ``i`` of a pair data set is a pure function of ``(seed, i)``, so any DataLoader worker split gives
the same stream and a training run resumes exactly from the index of its next sample.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from pconv_lessons.validation import check_int


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        photo = getattr(skimage.data, name)()
        return photo[0] if name == "stereo_motorcycle" else photo

    return load


def _matplotlib_photo(file_name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data(file_name)) as image:
            return np.asarray(image.convert("RGB"))

    return load


# Colour photos that ship inside scikit-image and matplotlib (no download needed), by the loader of each one.
_SAMPLE_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage_photo("astronaut"),
    "chelsea": _skimage_photo("chelsea"),
    "coffee": _skimage_photo("coffee"),
    "rocket": _skimage_photo("rocket"),
    "motorcycle": _skimage_photo("stereo_motorcycle"),
    "hubble": _skimage_photo("hubble_deep_field"),
    "immunohistochemistry": _skimage_photo("immunohistochemistry"),
    "grace_hopper": _matplotlib_photo("grace_hopper.jpg"),
}
SAMPLE_NAMES: tuple[str, ...] = tuple(_SAMPLE_LOADERS)


def to_tensor(array: np.ndarray) -> Tensor:
    """An (H, W, 3) uint8 (÷255), uint16 (÷65535) or float array in [0, 1] → a float32 tensor (3, H, W) in [0, 1]."""
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] != 3:
        shape = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"expected an RGB array shaped (H, W, 3), got {shape}")
    if array.dtype in (np.uint8, np.uint16):
        array = array.astype(np.float32) / np.iinfo(array.dtype).max
    elif np.issubdtype(array.dtype, np.floating):
        if array.size and not (np.isfinite(array).all() and 0.0 <= array.min() and array.max() <= 1.0):
            raise ValueError(
                f"a float array must hold finite values in [0, 1], got min {array.min():g}, max {array.max():g}"
            )
    else:
        raise ValueError(f"expected a uint8, uint16 or float array, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).contiguous()


def sample_images(names: Iterable[str] | None = None) -> dict[str, Tensor]:
    """The course's sample photos as ``{name: (3, H, W) float tensor in [0, 1]}``, in ``SAMPLE_NAMES`` order.

    They are scikit-image's bundled colour photos and matplotlib's sample photo (Grace Hopper), so they work
    offline. Sizes differ from photo to photo.
    """
    wanted = SAMPLE_NAMES if names is None else tuple(names)
    unknown = [name for name in wanted if name not in _SAMPLE_LOADERS]
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; choose from {list(SAMPLE_NAMES)}")
    return {name: to_tensor(_SAMPLE_LOADERS[name]()) for name in wanted}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def brick_texture() -> tuple[Tensor, Tensor]:
    """scikit-image's brick wall (512², grey) as RGB, halved to 256² (antialiased: several bricks per 64² crop) and
    split into its left half, for training, and its right half, for testing: two (3, 256, 128) tensors in [0, 1]."""
    import skimage.data

    brick = torch.from_numpy(skimage.data.brick()).float().div(255)[None, None].repeat(1, 3, 1, 1)
    brick = torch.nn.functional.interpolate(brick, scale_factor=0.5, mode="bilinear", antialias=True)[0].clamp(0, 1)
    return brick[:, :, :128], brick[:, :, 128:]


def random_crops(source: Tensor, count: int, size: int, generator: torch.Generator) -> Tensor:
    """(count, C, size, size) crops of a (C, H, W) tensor, top-left corners uniform (all tops drawn, then all lefts)."""
    if not isinstance(source, Tensor) or source.dim() != 3:
        shape = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        raise ValueError(f"source must be a (C, H, W) tensor, got {shape}")
    count, size = check_int(count, "count", 1), check_int(size, "size", 1, min(source.shape[-2:]))
    tops = torch.randint(source.shape[1] - size + 1, (count,), generator=generator).tolist()
    lefts = torch.randint(source.shape[2] - size + 1, (count,), generator=generator).tolist()
    return torch.stack([source[:, top : top + size, left : left + size] for top, left in zip(tops, lefts)])


def load_image(path: str | Path) -> Tensor:
    """Read an image file as a (3, H, W) float tensor in [0, 1] (grey and RGBA are converted to RGB).

    Pixel values are scaled by their real range: 8-bit images ÷255, 16-bit ones (PNG, TIFF) ÷65535, float
    images (TIFF) kept as they are when they lie in [0, 1], else mapped linearly from [min(0, lo), max(1, hi)]
    to [0, 1]. The EXIF orientation tag is applied, so a phone photo comes out upright. A missing, unreadable
    or corrupt file, a decompression bomb (more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels) and a float
    image holding NaN or inf raise ``ValueError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = _rgb_in_unit_range(ImageOps.exif_transpose(image), path)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}") from error
    return to_tensor(rgb)


def _rgb_in_unit_range(image: Image.Image, path: Path) -> np.ndarray:
    """The decoded pixels as (H, W, 3): uint8 for 8-bit images, else float32 in [0, 1] scaled by the real range."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return np.asarray(image.convert("RGB"))  # 8-bit (also palette, grey, RGBA, CMYK): to_tensor divides by 255
    grey = np.asarray(image, dtype=np.float64)
    if not np.isfinite(grey).all():
        raise ValueError(f"image file {path} holds NaN or infinite pixel values")
    low, high = float(grey.min()), float(grey.max())
    if image.mode != "F" and 0 <= low and high <= 65535:  # 16-bit data (Pillow gives I;16 or I)
        grey = grey / 65535.0
    else:
        low, high = min(0.0, low), max(1.0, high)
        grey = (grey - low) / (high - low)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.float32)


def image_files(root: str | Path) -> list[Path]:
    """Every image file (``IMAGE_SUFFIXES``) under ``root``, recursively and sorted, following symlinked folders.

    Each real folder is searched once, so a symlink loop (a link to a parent) ends the search instead of
    running forever, and a folder linked twice gives its files once.
    """
    files: list[Path] = []
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        files += [Path(folder, name) for name in names if Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(path for path in files if path.is_file())


# --------------------------------------------------------------------------------------------------
# Training pairs: (image, mask) streams for the Trainer.
#
# Sample number ``i`` of a data set is a pure function of ``(seed, i)``: which photo, where the crop
# lies, the flip and the mask all come from a generator seeded with both. Workers can therefore
# split the indices any way they like, and resuming a run only needs the index of the next sample.
# --------------------------------------------------------------------------------------------------

# Whole photos held out of training, so evaluation sees pictures the model has never seen: every photo the
# installed packages ship besides the training five (scikit-image's chelsea and coffee, matplotlib's Grace Hopper).
SAMPLE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "rocket", "motorcycle", "hubble", "immunohistochemistry"),
    "test": ("chelsea", "coffee", "grace_hopper"),
}

MaskFn = Callable[[int, int], Tensor]
"""``mask_fn(size, seed) -> (1, size, size)`` float mask, 1 = known, 0 = hole."""


class MaskSource:
    """One mask per call from ``pconv_lessons.masks``: ``MaskSource("free_form")(size, seed) -> (1, size, size)``.

    ``kind`` may name several families separated by commas (``"free_form,mixed"``); each seed then picks
    one of them in turn, so the families are mixed in equal parts.
    """

    def __init__(self, kind: str = "free_form") -> None:
        from pconv_lessons.masks import KINDS

        if not isinstance(kind, str):
            raise TypeError(f"mask kind must be a string of mask families, got {type(kind).__name__}")
        self.kind = kind
        self.kinds = tuple(part.strip() for part in kind.split(",") if part.strip())
        if not self.kinds:
            raise ValueError(f"mask kind must name at least one mask family, got {kind!r}")
        unknown = [part for part in self.kinds if part not in KINDS]
        if unknown:
            raise ValueError(f"mask kind {kind!r}: unknown mask famil{'ies' if len(unknown) > 1 else 'y'} "
                             f"{unknown}; choose from {list(KINDS)}, comma-separated to mix them")

    def __call__(self, size: int, seed: int) -> Tensor:
        from pconv_lessons.masks import generate

        return generate(self.kinds[seed % len(self.kinds)], 1, size, seed=seed)[0]

    def __repr__(self) -> str:
        return f"MaskSource({self.kind!r})"


class MaskBank:
    """A fixed pool of masks spread evenly over hole-ratio buckets, reused with random rotations and flips.

    ``MaskBank("free_form", 64, per_bucket=1000)`` draws, once, ``per_bucket`` masks of each family in
    ``kind`` (comma-separated) for each bucket (default: the six paper buckets, 0.01 … 0.6) with
    ``pconv_lessons.masks.generate_in_bucket``, batched, which is much cheaper than one mask per call.
    ``bank(size, seed)`` then returns mask ``seed``-chosen from the pool, rotated by a multiple of 90° and
    maybe mirrored (the hole ratio is unchanged). Training on it covers every bucket evenly, including the
    1–2 pixel strokes of the smallest bucket, like the PConv paper's fixed irregular-mask set.

    ``seed`` defaults to a large number so the pool never repeats the masks of an evaluation run with a
    small seed (``pconv_lessons.metrics.bucket_masks``).
    """

    def __init__(
        self,
        kind: str = "free_form",
        size: int = 64,
        per_bucket: int = 1000,
        buckets: Iterable[tuple[float, float]] | None = None,
        seed: int = 7_000_000,
    ) -> None:
        from pconv_lessons.masks import PAPER_BUCKETS, generate_in_bucket

        per_bucket = check_int(per_bucket, "per_bucket", 1)
        kinds = MaskSource(kind).kinds
        chosen = tuple(PAPER_BUCKETS if buckets is None else buckets)
        if not chosen:
            raise ValueError(f"buckets must hold at least one (lo, hi) hole-ratio bucket, e.g. {list(PAPER_BUCKETS)} "
                             f"(None: those), got {buckets!r}")
        pool = [
            generate_in_bucket(family, per_bucket, size, bucket, seed=seed + 100 * k + b) > 0.5
            for k, family in enumerate(kinds)
            for b, bucket in enumerate(chosen)
        ]
        self.kind, self.size = kind, size
        self.masks = torch.cat(pool)  # bool (count, 1, size, size): a quarter of float32's memory in workers

    def __len__(self) -> int:
        return len(self.masks)

    def __call__(self, size: int, seed: int) -> Tensor:
        if size != self.size:
            raise ValueError(f"this MaskBank holds {self.size}² masks, asked for {size}²")
        rng = np.random.default_rng(seed)
        mask = torch.rot90(self.masks[int(rng.integers(len(self.masks)))], int(rng.integers(4)), dims=(-2, -1))
        if rng.random() < 0.5:
            mask = mask.flip(-1)
        return mask.float()

    def __repr__(self) -> str:
        return f"MaskBank({self.kind!r}, {self.size}, {len(self.masks)} masks)"


def _sample_rng(seed: int, index: int) -> np.random.Generator:
    if index < 0:
        raise IndexError(f"sample index must be >= 0, got {index}")
    return np.random.default_rng([seed, index])


def _epoch_order(seed: int, count: int, index: int) -> int:
    """Position ``index`` of an endless sequence of shuffled passes over ``count`` items."""
    epoch, offset = divmod(index, count)
    return int(np.random.default_rng([seed, epoch, 1]).permutation(count)[offset])


def resize_shorter_side(image: Tensor, size: int) -> Tensor:
    """Resize (3, H, W) so that min(H, W) == ``size``, keeping the aspect ratio (bilinear, antialiased)."""
    size = check_int(size, "size", 1)
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new_size = (max(size, round(height * scale)), max(size, round(width * scale)))
    if new_size == (height, width):
        return image
    resized = torch.nn.functional.interpolate(
        image[None], size=new_size, mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0].clamp(0.0, 1.0)


def _crop(image: Tensor, size: int, rng: np.random.Generator | None) -> Tensor:
    """A size×size crop: at a random position (``rng``) or in the centre (``rng=None``)."""
    height, width = image.shape[-2:]
    if rng is None:
        top, left = (height - size) // 2, (width - size) // 2
    else:
        top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return image[:, top : top + size, left : left + size]


def centre_square(image: Tensor, size: int) -> Tensor:
    """(3, H, W) → (3, size, size): the shorter side resized to ``size`` (``resize_shorter_side``), then the centre
    crop — how evaluation folders (``ImageFolderPairs(train=False)``, ``pconv-eval --size``) bring photos to one size."""
    return _crop(resize_shorter_side(image, size), size, None)


class InpaintingPairs(torch.utils.data.Dataset):
    """Base of the (image, mask) data sets: ``pairs[i] -> (image (3, S, S), mask (1, S, S))``.

    Any index ``i >= 0`` is valid (the stream is endless: pass ``i`` through shuffled passes over the
    sources); ``len()`` is the number of distinct source images. Sample ``i`` is fixed by ``(seed, i)``,
    so a ``train=False`` stream is a reproducible evaluation set; ``train=True`` adds random flips (and,
    for folders, random instead of centre crops).
    """

    def __init__(self, image_size: int, mask_fn: MaskFn | None, seed: int, train: bool) -> None:
        self.image_size = check_int(image_size, "image_size", 8)
        self.mask_fn = mask_fn if mask_fn is not None else MaskSource()
        self.seed = seed
        self.train = train

    def source_count(self) -> int:
        """How many distinct source images the stream cycles through (subclasses say)."""
        raise NotImplementedError(f"{type(self).__name__} must define source_count()")

    def patch(self, source: int, rng: np.random.Generator) -> Tensor:
        """The (3, S, S) crop of source image ``source`` for one sample (subclasses say how)."""
        raise NotImplementedError(f"{type(self).__name__} must define patch()")

    def __len__(self) -> int:
        return self.source_count()

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        rng = _sample_rng(self.seed, int(index))
        source = _epoch_order(self.seed, self.source_count(), int(index))
        image = self.patch(source, rng)
        if self.train and rng.random() < 0.5:
            image = image.flip(-1)
        mask = self.mask_fn(self.image_size, int(rng.integers(0, 2**31 - 1)))
        expected = (1, self.image_size, self.image_size)
        if tuple(mask.shape) != expected:
            raise ValueError(f"mask_fn must return a mask shaped {expected}, got {tuple(mask.shape)}")
        return image.contiguous(), mask.float()


class SamplePatches(InpaintingPairs):
    """Random square patches of the shipped sample photos, with masks (the course's offline training set).

    ``split="train"`` uses the photos in ``SAMPLE_SPLITS["train"]``; ``split="test"`` the held-out
    ``SAMPLE_SPLITS["test"]`` (chelsea, coffee and grace_hopper), never seen in training. Each patch comes from a copy
    of the photo scaled by a factor drawn in ``scale`` (1 = native resolution; the lower end is raised
    where needed so the patch fits), so the model sees both fine texture and whole objects.
    """

    def __init__(
        self,
        image_size: int = 64,
        split: str = "train",
        mask_fn: MaskFn | None = None,
        seed: int = 0,
        scale: tuple[float, float] = (0.25, 1.0),
        train: bool | None = None,
    ) -> None:
        if split not in SAMPLE_SPLITS:
            raise ValueError(f"split must be one of {list(SAMPLE_SPLITS)}, got {split!r}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        super().__init__(image_size, mask_fn, seed, train=(split == "train") if train is None else train)
        self.split = split
        self.scale = scale
        self.names = SAMPLE_SPLITS[split]
        self.photos = list(sample_images(self.names).values())
        too_small = [n for n, p in zip(self.names, self.photos) if min(p.shape[-2:]) < image_size]
        if too_small:
            raise ValueError(f"image_size {image_size} is larger than sample photo(s) {too_small}")

    def source_count(self) -> int:
        return len(self.photos)

    def patch(self, source: int, rng: np.random.Generator) -> Tensor:
        photo = self.photos[source]
        shorter = min(photo.shape[-2:])
        low = max(self.scale[0], self.image_size / shorter)
        factor = float(rng.uniform(low, max(low, self.scale[1])))
        window = _crop(photo, min(shorter, round(self.image_size / factor)), rng)
        return resize_shorter_side(window, self.image_size)


class ImageFolderPairs(InpaintingPairs):
    """Every image file under ``root`` (searched recursively, sorted, symlinked folders followed: ``image_files``),
    as (image, mask) pairs.

    Resize/crop policy: the shorter side is resized to ``load_size`` (default: ``image_size``) keeping
    the aspect ratio, then a ``image_size``² crop is taken — random position plus a random horizontal
    flip when ``train=True``, the centre when ``train=False``. So Places365-small (256²) at
    ``image_size=256`` is used as is, and a 1024² CelebA-HQ face becomes the whole face at 256².

    A file that cannot be decoded raises ``ValueError`` naming it; with ``skip_corrupt=True`` it is
    skipped instead (the next file in the shuffled order is used) with a warning that counts the
    files skipped so far in this process (``skipped`` holds their paths).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int = 256,
        mask_fn: MaskFn | None = None,
        seed: int = 0,
        train: bool = True,
        load_size: int | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__(image_size, mask_fn, seed, train)
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"image folder not found: {self.root}")
        self.files = image_files(self.root)
        if not self.files:
            raise ValueError(
                f"no image files ({', '.join(IMAGE_SUFFIXES)}) found under {self.root}; "
                "see data/README.md for how to get a data set"
            )
        self.load_size = self.image_size if load_size is None else check_int(load_size, "load_size", self.image_size)
        self.skip_corrupt = skip_corrupt
        self.skipped: set[Path] = set()

    def source_count(self) -> int:
        return len(self.files)

    def patch(self, source: int, rng: np.random.Generator) -> Tensor:
        for attempt in range(len(self.files)):
            path = self.files[(source + attempt) % len(self.files)]
            try:
                image = load_image(path)
            except ValueError:
                if not self.skip_corrupt:
                    raise
                self.skipped.add(path)
                warnings.warn(f"skipping unreadable image {path} ({len(self.skipped)} skipped so far)", stacklevel=2)
                continue
            image = resize_shorter_side(image, self.load_size)
            return _crop(image, self.image_size, rng if self.train else None)
        raise ValueError(f"none of the {len(self.files)} image files under {self.root} could be read")


class TexturePatches(InpaintingPairs):
    """(image, mask) pairs from one half of the brick texture (``brick_texture``): ``--data brick``.

    ``split="train"`` crops the left half with random augmentation, ``split="test"`` the right half as it is (plain
    axis-aligned crops at native scale), so a model is always scored on texture it never saw. A training crop is an
    S × S window of the left half resampled (bilinear ``grid_sample``) through the affine map

        source(u) = c + s · R(θ) · F · u,      u ∈ [−S/2, S/2]², in pixels,

    with the centre c uniform over the positions where the rotated window fits, the scale s (source pixels per
    output pixel) drawn log-uniformly in ``scale``, θ uniform in [−``max_angle``, ``max_angle``] degrees and F a
    horizontal flip half the time (``InpaintingPairs`` adds it). Scale and rotation teach the network the rule
    (straight mortar lines, a period) instead of the training half's pixels, which a small net otherwise memorises.
    """

    def __init__(
        self,
        image_size: int = 64,
        split: str = "train",
        mask_fn: MaskFn | None = None,
        seed: int = 0,
        scale: tuple[float, float] = (0.7, 1.4),
        max_angle: float = 180.0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' (left half) or 'test' (right half), got {split!r}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        super().__init__(image_size, mask_fn, seed, train=split == "train")
        self.split, self.scale, self.max_angle = split, scale, float(max_angle)
        self.texture = brick_texture()[0 if split == "train" else 1]
        limit = min(self.texture.shape[-2:])
        if self.image_size > limit:
            raise ValueError(f"image_size must be at most {limit} (the texture half is {tuple(self.texture.shape[1:])}), "
                             f"got {self.image_size}")

    def source_count(self) -> int:
        return 1

    def patch(self, source: int, rng: np.random.Generator) -> Tensor:
        if not self.train or (self.scale == (1.0, 1.0) and self.max_angle == 0):
            return _crop(self.texture, self.image_size, rng)  # a plain window (no resampling)
        height, width = self.texture.shape[-2:]
        angle = np.deg2rad(rng.uniform(-self.max_angle, self.max_angle))
        cos, sin = np.cos(angle), np.sin(angle)
        reach = self.image_size / 2 * (abs(cos) + abs(sin))  # half the rotated window's bounding box, per unit scale
        factor = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
        factor = min(factor, (min(height, width) / 2 - 1) / reach)  # shrink where the window would not fit
        centre_y = rng.uniform(reach * factor, height - reach * factor)
        centre_x = rng.uniform(reach * factor, width - reach * factor)
        # affine_grid works in normalised coordinates (−1 … 1 across each side, align_corners=False)
        theta = torch.tensor([
            [factor * cos * self.image_size / width, -factor * sin * self.image_size / width, 2 * centre_x / width - 1],
            [factor * sin * self.image_size / height, factor * cos * self.image_size / height, 2 * centre_y / height - 1],
        ], dtype=torch.float32)
        grid = torch.nn.functional.affine_grid(theta[None], [1, 3, self.image_size, self.image_size], align_corners=False)
        window = torch.nn.functional.grid_sample(self.texture[None], grid, mode="bilinear", align_corners=False)
        return window[0].clamp(0.0, 1.0)


BUILT_IN_DATA: tuple[str, ...] = ("sample", "brick", "brick-plain")
"""The data sets ``--data`` names by a bare word (``"sample"``: ``SamplePatches``; ``"brick"``, ``"brick-plain"``:
``TexturePatches``); any other value is a folder."""


def resolve_data(data: str) -> str | Path:
    """What ``data`` (``--data``) names: a name of ``BUILT_IN_DATA`` (returned as is) or a folder of images (a Path).

    A bare built-in name always means the built-in data set, also where the current directory has a folder of that
    name; a ``UserWarning`` then says so and how to train on the folder (``./sample``: any path with a slash is a
    folder). An empty ``data`` — an unset shell variable, ``--data "$DATA"`` — is a ``ValueError``, never "the
    current directory".
    """
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be a built-in data set {list(BUILT_IN_DATA)} or a folder path, got "
                        f"{type(data).__name__} {data!r:.60}")
    if data in BUILT_IN_DATA:
        if Path(data).is_dir():
            warnings.warn(f"data={data!r} (--data {data}) means the built-in {data!r} data set; there is also a "
                          f"folder {data!r} here, which is not used: pass --data ./{data} to train on the folder",
                          UserWarning, stacklevel=2)
        return data
    if str(data).strip() == "":
        raise ValueError(f"data (--data) is empty: name a built-in data set {list(BUILT_IN_DATA)} or a folder of "
                         f"images (was it an unset shell variable, --data \"$DATA\"?)")
    return Path(data)


def make_pairs(
    data: str,
    image_size: int,
    mask_fn: MaskFn | None = None,
    seed: int = 0,
    split: str = "train",
    skip_corrupt: bool = False,
) -> InpaintingPairs:
    """The pairs ``data`` names (``resolve_data``): ``"sample"`` → ``SamplePatches`` of ``split``; ``"brick"`` →
    ``TexturePatches`` (left half, scaled, rotated and flipped at random, for training; right half for testing);
    ``"brick-plain"`` → the same without scaling or rotation (flips only); a folder → ``ImageFolderPairs``."""
    source = resolve_data(data)
    if source == "sample":
        return SamplePatches(image_size, split=split, mask_fn=mask_fn, seed=seed)
    if source in ("brick", "brick-plain"):
        augment = {} if source == "brick" else {"scale": (1.0, 1.0), "max_angle": 0.0}
        return TexturePatches(image_size, split=split, mask_fn=mask_fn, seed=seed, **augment)
    return ImageFolderPairs(source, image_size, mask_fn=mask_fn, seed=seed, train=split == "train",
                            skip_corrupt=skip_corrupt)
