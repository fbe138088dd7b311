"""Contextual attention (Yu et al., 2018, "Generative Image Inpainting with Contextual Attention"; DeepFill v2's
refinement stage): fill the hole's features by copying feature patches from the known region, chosen by similarity.

With features x (N, C, H, W) and a mask (1 = known), for one sample, at half resolution (``rate`` r = 2):

    x_s         = nearest_downsample(x, r)                           (N, C, h, w),  h = H / r, w = W / r
    b_j         = the 3×3 patch of x_s around position j             one background patch per position, j = 1 … h·w
    usable_j    = 1 if the mask is 1 on all of b_j's 3×3 grid cells   (mask down-sampled to h×w; outside counts as known)
    s_{i,j}     = ⟨f_i, b_j / max(‖b_j‖, 10⁻⁴)⟩                      f_i = the 3×3 patch of x_s around position i:
                                                                      one convolution of x_s with the normalised b_j
                                                                      as its h·w kernels (the paper's cosine
                                                                      similarity; the code, and so this layer,
                                                                      normalises the background patch only)
    s ← fuse(s)                                                      attention propagation (below), ``fuse=True``
    a_{i,j}     = usable_j · softmax_j(10 · usable_j · s_{i,j})       masked softmax over the background, scale 10
    y           = conv_transpose(a, raw, stride r) / 4               paste: raw_j = the 4×4 (2r × 2r) patch of the
                                                                      full-resolution x under b_j; every output
                                                                      pixel is covered by 4 pasted patches

Attention propagation (``fuse``): a foreground shift that fits, fits its neighbours too. View s as a matrix
S[j, i] over flattened positions (row-major) and convolve it with the 3×3 identity matrix, which adds
S[j−1, i−1] + S[j, i] + S[j+1, i+1] (neighbours to the left and right); then re-order both indices column-major,
convolve again (neighbours above and below), and re-order back. Like the original, the flattened ±1 steps wrap
from the end of one row to the start of the next.

Padding and patch positions follow TensorFlow's "SAME" (``tf_same``): everything is computed as in
nipponjo/deepfillv2-pytorch's ``networks_tf.ContextualAttention``, JiahuiYu/generative_inpainting's TensorFlow
original converted to PyTorch, with one difference: **the original uses the first sample's mask for the whole
batch** (``m = m[0]``); this layer uses each sample's own mask. With a batch of one, or one mask for the whole
batch, the two are identical. The batch is handled with grouped convolutions (one group per sample) instead of
a Python loop over samples.

Memory: the score matrix s has (h·w)² entries per sample — 16384² (1 GiB in float32) for DeepFill v2's
attention at a 1024² photo, and the fused, softmaxed and pasted copies of it several times that. Above
``chunk_elements`` entries, the layer therefore works through the foreground positions i in chunks: for a chunk it
computes the score columns the chunk and its propagation neighbours need (one matrix product of the normalised
background patches with those foreground patches), applies the propagation as nine index shifts of those columns
(the two 3×3-identity convolutions written out: F[j, i] = Σ_{k₂, k₁} S[a(j, k₂) + k₁, a(i, k₂) + k₁] with
a(p, k₂) the row-major index of the position k₂ steps from p in column-major order, each term zero where an index
leaves 0 … h·w − 1), the masked softmax over j, and the paste as a matrix product with the raw patches, folded
into the output once at the end. The result equals the one-shot computation up to float rounding; peak memory
grows with ``chunk_elements`` instead of (h·w)².

Subnormal weights: ``exp(10 · (s_{i,j} − max_j s_{i,j}))`` falls below float32's smallest normal number (about
1.2·10⁻³⁸) for every background patch whose score is more than about 8.7 below the best one, and on many CPUs
arithmetic on such subnormal numbers is tens of times slower. The layer therefore sets attention weights below that
number to zero before pasting (``flush_subnormal``): the output changes by less than 10⁻³⁷ · Σ|raw|, and the
paste of DeepFill v2 at 256², measured on an Intel Xeon with random weights, went from 0.81 s to 0.03 s. The
original keeps them (and so, on such a CPU, runs its paste slowly whenever its weights produce them).

Shapes: H and W must be multiples of ``rate``; the mask may be given at the features' resolution or at any integer
multiple of it (DeepFill v2 passes the full-image mask, 4× the features': it is down-sampled in one step, as the
original does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.validation import check_batch, check_mask_values
from pconv_lessons.layers.tf_same import nearest_downsample, pad_same


def extract_patches(x: Tensor, size: int, stride: int = 1) -> Tensor:
    """All ``size``×``size`` patches of ``x`` (N, C, H, W) under TF "SAME" padding: (N, L, C, size, size), row-major."""
    n, c = x.shape[:2]
    columns = F.unfold(pad_same(x, size, stride), size, stride=stride)  # (N, C·size², L)
    return columns.view(n, c, size, size, -1).permute(0, 4, 1, 2, 3)


def patch_norms(patches: Tensor) -> Tensor:
    """max(‖b_j‖, 1e-4) over the last dimension, as √(Σ b²) (as the original; ``Tensor.norm`` is about ten times
    slower on the CPU). Both the one-shot and the chunked path use it, so they normalise identically."""
    return patches.square().sum(dim=-1).sqrt().clamp_min(1e-4)


def flush_subnormal(weights: Tensor) -> Tensor:
    """``weights`` with its subnormal entries (0 < w < the dtype's smallest normal number) set to 0, in place."""
    return weights.masked_fill_(weights < torch.finfo(weights.dtype).tiny, 0)


class ContextualAttention(nn.Module):
    """DeepFill v2's contextual attention: known-region patches as kernels, masked softmax, transposed-conv paste.

    ``forward(features, mask, return_attention=False)``: features (N, C, H, W), mask (N, 1, s·H, s·W) with 1 =
    known (any integer s ≥ 1), returns features of the same shape as ``features`` and, with ``return_attention``,
    the attention (N, h·w, h, w): entry [n, j, y, x] is how much foreground position (y, x) of the half-resolution
    grid copies background patch j (row-major index). Parameter-free. Equations in the module docstring.
    """

    def __init__(self, kernel_size: int = 3, rate: int = 2, softmax_scale: float = 10.0, fuse: bool = True,
                 fuse_size: int = 3, chunk_elements: int = 2 ** 24) -> None:
        super().__init__()
        if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements < 1:
            raise ValueError(f"chunk_elements must be a positive int (score entries per chunk), got {chunk_elements!r}")
        self.chunk_elements = chunk_elements
        for name, value in (("kernel_size", kernel_size), ("fuse_size", fuse_size)):
            if not isinstance(value, int) or value < 1 or value % 2 == 0:
                raise ValueError(f"{name} must be an odd positive int, got {value!r}")
        if not isinstance(rate, int) or rate < 2 or rate % 2:
            raise ValueError(f"rate must be an even int >= 2 (DeepFill v2 uses 2), got {rate!r}")
        self.kernel_size = kernel_size
        self.rate = rate
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.fuse_size = fuse_size

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, rate={self.rate}, softmax_scale={self.softmax_scale}, "
                f"fuse={self.fuse}, chunk_elements={self.chunk_elements}")

    def forward(self, features: Tensor, mask: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        self._check(features, mask)
        if features.shape[0] == 0:  # an empty batch: nothing to attend to, an empty result of the right shape
            h, w = nearest_downsample(features, self.rate).shape[-2:]
            output = features.new_zeros(features.shape)
            return (output, features.new_zeros(0, h * w, h, w)) if return_attention else output
        raw = extract_patches(features, 2 * self.rate, stride=self.rate)  # (N, L, C, 2r, 2r)
        small = nearest_downsample(features, self.rate)
        positions = small.shape[-2] * small.shape[-1]
        if not return_attention and positions * positions > self.chunk_elements:
            usable = self.usable_patches(mask, small.shape[-2:])
            return torch.cat([self.chunked(small[n:n + 1], raw[n], usable[n]) for n in range(features.shape[0])])
        scores = self.similarity(small, extract_patches(small, self.kernel_size))
        if self.fuse:
            scores = self.propagate(scores)
        attention = self.masked_softmax(scores, self.usable_patches(mask, small.shape[-2:]))
        output = self.paste(attention, raw)
        return (output, attention) if return_attention else output

    def usable_patches(self, mask: Tensor, size: torch.Size) -> Tensor:
        """(N, L): 1 for a background patch whose every grid cell is known (zero padding counts as known), else 0."""
        small_mask = nearest_downsample(mask, mask.shape[-2] // size[0])
        hole = (1 - small_mask).to(torch.float32)
        ones = torch.ones(1, 1, self.kernel_size, self.kernel_size, device=mask.device)
        hole_count = F.conv2d(pad_same(hole, self.kernel_size), ones)
        return (hole_count == 0).flatten(1).to(mask.dtype)

    def similarity(self, small: Tensor, kernels: Tensor) -> Tensor:
        """s[n, j, y, x] = ⟨foreground patch at (y, x), background patch j / ‖·‖⟩ as one grouped convolution."""
        n, c, h, w = small.shape
        normalised = kernels / patch_norms(kernels.flatten(2))[..., None, None, None]
        padded = pad_same(small, self.kernel_size)
        scores = F.conv2d(padded.reshape(1, n * c, *padded.shape[-2:]),
                          normalised.reshape(-1, c, self.kernel_size, self.kernel_size).contiguous(), groups=n)
        return scores.view(n, -1, h, w)

    def propagate(self, scores: Tensor) -> Tensor:
        """Attention propagation: the score matrix convolved with the identity along rows, then along columns."""
        n, positions, h, w = scores.shape
        eye = torch.eye(self.fuse_size, device=scores.device, dtype=scores.dtype).view(1, 1, self.fuse_size, self.fuse_size)
        pad = self.fuse_size // 2
        matrix = F.conv2d(scores.reshape(n, 1, positions, h * w), eye, padding=pad)  # neighbours left and right
        column_major = matrix.view(n, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(n, 1, positions, h * w)
        matrix = F.conv2d(column_major, eye, padding=pad)  # neighbours above and below
        return matrix.view(n, w, h, w, h).permute(0, 2, 1, 4, 3).reshape(n, positions, h, w)

    def masked_softmax(self, scores: Tensor, usable: Tensor) -> Tensor:
        """a = usable · softmax(scale · usable · s) over the background patches (dim 1)."""
        usable = usable[:, :, None, None]
        return flush_subnormal(torch.softmax(scores * usable * self.softmax_scale, dim=1) * usable)

    def paste(self, attention: Tensor, raw: Tensor) -> Tensor:
        """Σ_j a_j · raw_j pasted at stride ``rate`` (a transposed convolution with the raw patches), / 4."""
        n, positions, h, w = attention.shape
        c, size = raw.shape[2], raw.shape[-1]
        kernels = raw.reshape(n * positions, c, size, size).contiguous()  # oneDNN's fast path wants it dense
        pasted = F.conv_transpose2d(attention.reshape(1, n * positions, h, w), kernels,
                                    stride=self.rate, padding=self.rate // 2, groups=n)
        return pasted.view(n, c, h * self.rate, w * self.rate) / 4

    def chunked(self, small: Tensor, raw: Tensor, usable: Tensor) -> Tensor:
        """One sample's output, the foreground positions taken in chunks (module docstring, "Memory")."""
        _, c, h, w = small.shape
        positions = h * w
        patches = extract_patches(small, self.kernel_size)[0].flatten(1)  # (L, C·k²), row-major positions
        normalised = patches / patch_norms(patches)[:, None]
        raw_flat = raw.flatten(1)  # (L, C·(2r)²)
        shifts = self.shift_table(h, w, small.device)
        columns = small.new_zeros(raw_flat.shape[1], positions)
        step = max(1, self.chunk_elements // positions)
        for start in range(0, positions, step):
            chunk = torch.arange(start, min(start + step, positions), device=small.device)
            scores = self.chunk_scores(patches, normalised, chunk, shifts)  # (L, chunk): S or its fused version
            weights = flush_subnormal(torch.softmax(scores * usable[:, None] * self.softmax_scale, dim=0) * usable[:, None])
            columns[:, chunk] = (weights.T @ raw_flat).T
        size = raw.shape[-1]
        out = F.fold(columns[None], (h * self.rate, w * self.rate), size, stride=self.rate, padding=self.rate // 2)
        return out / 4

    def shift_table(self, h: int, w: int, device: torch.device) -> list[Tensor]:
        """For each propagation term (k₂, k₁): the index a(p, k₂) + k₁ of every position p, −1 where it leaves the
        grid's flattened range (without ``fuse`` a single identity term)."""
        identity = torch.arange(h * w, device=device)
        if not self.fuse:
            return [identity]
        column_major = (identity % w) * h + identity // w
        reach = self.fuse_size // 2
        table = []
        for k2 in range(-reach, reach + 1):
            moved = column_major + k2
            inside = (moved >= 0) & (moved < h * w)
            moved = moved.clamp(0, h * w - 1)
            row_major = (moved % h) * w + moved // h
            for k1 in range(-reach, reach + 1):
                index = row_major + k1
                table.append(torch.where(inside & (index >= 0) & (index < h * w), index, -1))
        return table

    def chunk_scores(self, patches: Tensor, normalised: Tensor, chunk: Tensor, shifts: list[Tensor]) -> Tensor:
        """Columns ``chunk`` of the (fused) score matrix: Σ over the shift table of S[shift(j), shift(i)]."""
        needed = torch.unique(torch.cat([shift[chunk] for shift in shifts]).clamp_min(0))
        where = torch.full((patches.shape[0],), -1, dtype=torch.long, device=patches.device)
        where[needed] = torch.arange(needed.numel(), device=patches.device)
        scores = normalised @ patches[needed].T  # (L, |needed|): S[j, i] for the needed foreground columns
        total = scores.new_zeros(patches.shape[0], chunk.numel())
        for shift in shifts:
            rows, cols = shift, shift[chunk]
            term = scores[rows.clamp_min(0)][:, where[cols.clamp_min(0)]]
            total += term * ((rows >= 0)[:, None] & (cols >= 0)[None, :])
        return total

    def _check(self, features: Tensor, mask: Tensor) -> None:
        check_batch(features, "features")
        check_batch(mask, "mask")
        height, width = features.shape[-2:]
        if height % self.rate or width % self.rate:
            raise ValueError(f"features' height and width must be multiples of rate={self.rate}, "
                             f"got shape {tuple(features.shape)}")
        scale = mask.shape[-2] // height if height else 0
        if (mask.shape[0] != features.shape[0] or mask.shape[1] != 1 or scale < 1
                or tuple(mask.shape[-2:]) != (scale * height, scale * width)):
            raise ValueError(f"mask must be shaped (N, 1, s·H, s·W) for features {tuple(features.shape)} "
                             f"(s a positive int, 1 = known), got {tuple(mask.shape)}")
        check_mask_values(mask)
