"""Checks for the GAN code a student writes in lesson 08, each against a reference independent of it.

**Spectral normalisation** (Miyato et al., 2018) of a convolution weight W (C_out, C_in, k, k), with W̄ its
C_out × C_in·k·k reshape, by power iteration from unit vectors u (C_out) and v (C_in·k·k):

    repeat n times:   u ← W̄ v / max(‖W̄ v‖, ε),    v ← W̄ᵀ u / max(‖W̄ᵀ u‖, ε)
    σ̂ = uᵀ W̄ v,      W_SN = W / σ̂

checked against ``torch.nn.utils.parametrizations.spectral_norm`` started from the same u, v with the same ε and n,
and, after many iterations from random vectors, σ̂ against σ(W̄) = ``torch.linalg.matrix_norm(W̄, ord=2)``.

**The layer's Lipschitz constant.** σ(W̄) = 1 does not make the convolution 1-Lipschitz. On inputs of one size
(C_in, H, W) the layer is the linear map A: x ↦ conv2d(x, W, stride, padding), and its Lipschitz constant is the
operator norm ‖A‖₂, estimated by power iteration with the adjoint Aᵀ = conv_transpose2d:

    x ← Aᵀ A x / ‖Aᵀ A x‖,     ‖A‖₂ ≈ ‖A x‖

checked against the brute force ``conv_operator_matrix``: the matrix of A built column by column (column i is A
applied to the i-th basis image) and its ``matrix_norm(ord=2)``.

**The SN-PatchGAN discriminator** (``SNPatchDiscriminator``): LeakyReLU₀.₂(conv 5×5, stride 2, padding 2) six
times, with the spectral-normalised weights, on the channels [2·image − 1, mask]; checked against the package
module holding the same weights.

**One alternating step** (DeepFill v2, ``pconv_lessons.training.gated``), comp = m ⊙ x + (1 − m) ⊙ out:

    D:  L_D = mean relu(1 − D(x, m)) + mean relu(1 + D(sg[comp], m));   one Adam step on D     (sg: no gradient)
    G:  L_G = λ_l1 · (mean|coarse − x| + mean|out − x|) + λ_gan · (−mean D(comp, m));   one Adam step on G

checked against ``Trainer.train_step`` with the package's objective: the same initial weights and batch must give
the same parameters of both networks afterwards. Before the step the discriminator's power-iteration vectors are set
to the exact singular vectors (an SVD), so the result does not depend on how many times the student's D step calls D.

DeepFill v2's own code (neuralgym's ``gan_hinge_loss``) weighs the two hinge terms ½ each: L_D/2. That is accepted
too. Adam is blind to a constant factor c on a loss except through its ε: with gradients c·g its moments are c·m
and c²·v, and the step lr · c·m̂ / (c·√v̂ + ε) = lr · m̂ / (√v̂ + ε/c). So the package's step with the discriminator's
ε doubled is, exactly, the step on ½·L_D: the reference for that convention. Any other factor (or a different loss
of about the same size) moves D's weights by about lr·ε/|g|, a difference near 1e-6 that the check reports in words.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from pconv_lessons.models.gated import SNPatchDiscriminator

TOLERANCE = 1e-9
OPERATOR_TOLERANCE = 1e-6  # relative; power iteration approaches ‖A‖₂ from below
OPERATOR_ITERATIONS = 2000
STEP_TOLERANCE = 1e-7


def _compare(name: str, mine: object, expected: Tensor, tolerance: float = TOLERANCE) -> None:
    if not isinstance(mine, Tensor) or mine.shape != expected.shape:
        got = tuple(mine.shape) if isinstance(mine, Tensor) else type(mine).__name__
        raise AssertionError(f"{name}: expected a tensor shaped {tuple(expected.shape)}, got {got}")
    error = float((mine.detach().double() - expected.double()).abs().max())
    if not error <= tolerance:
        raise AssertionError(f"{name} differs from the reference by up to {error:.3g} (allowed {tolerance:g})")


def _run(name: str, function: Callable, *args):
    """``function(*args)``; an exception it raises becomes an AssertionError that names the step being checked."""
    try:
        return function(*args)
    except Exception as error:  # the student's code, whatever it raises, is what the check reports on
        raise AssertionError(f"{name} raised {type(error).__name__}: {error}") from error


def _spectral_norm_parts(conv: nn.Conv2d) -> tuple[Tensor, nn.Module]:
    """(the raw weight, the _SpectralNorm parametrization) of a module built with ``spectral_norm``."""
    if not parametrize.is_parametrized(conv, "weight"):
        raise ValueError(f"{type(conv).__name__} has no spectral-norm parametrization on its weight")
    return conv.parametrizations.weight.original, conv.parametrizations.weight[0]


def check_spectral_norm(my_spectral_norm: Callable[[Tensor, Tensor, Tensor, int, float], tuple[Tensor, Tensor]]) -> None:
    """``my_spectral_norm(weight, u, v, iterations, eps) -> (weight / σ̂, σ̂)`` must equal torch's ``spectral_norm``.

    For several conv weights and iteration counts, torch's parametrization and the student's function start from
    the same ``_u`` / ``_v``; then, from random vectors and 500 iterations, σ̂ must equal ``matrix_norm(W̄, 2)``.
    Raises AssertionError saying which case differs and by how much.
    """
    generator = torch.Generator().manual_seed(0)
    for index, (shape, iterations) in enumerate([((8, 3, 5, 5), 1), ((4, 6, 3, 3), 3), ((16, 2, 5, 5), 2)]):
        conv = nn.Conv2d(shape[1], shape[0], shape[2]).double()
        with torch.no_grad():
            conv.weight.normal_(0.0, 1.0, generator=generator)
        spectral_norm(conv, n_power_iterations=iterations, eps=1e-12)
        raw, norm = _spectral_norm_parts(conv)
        u, v = norm._u.clone(), norm._v.clone()
        conv.train()
        expected = conv.weight.detach()  # runs torch's `iterations` power iterations from u, v
        result = _run("your spectral norm", my_spectral_norm, raw.detach().clone(), u, v, iterations, norm.eps)
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError(f"my_spectral_norm must return (normalised weight, sigma), got {type(result).__name__}")
        case = f"weight {shape}, {iterations} iteration(s)"
        _compare(f"your normalised weight ({case})", result[0], expected)
        _compare(f"your σ̂ ({case})", torch.as_tensor(result[1], dtype=torch.float64).reshape(()),
                 raw.detach().flatten()[0] / expected.flatten()[0])
    weight = torch.randn(6, 4, 3, 3, generator=generator, dtype=torch.float64)
    u = F.normalize(torch.randn(6, generator=generator, dtype=torch.float64), dim=0)
    v = F.normalize(torch.randn(36, generator=generator, dtype=torch.float64), dim=0)
    exact = torch.linalg.matrix_norm(weight.flatten(1), ord=2)
    converged = _run("your spectral norm", my_spectral_norm, weight, u, v, 500, 1e-12)
    _compare("your σ̂ after 500 iterations against σ(W̄) = matrix_norm(ord=2)",
             torch.as_tensor(converged[1], dtype=torch.float64).reshape(()), exact)


def conv_operator_matrix(weight: Tensor, size: tuple[int, int], stride: int = 1, padding: int = 0) -> Tensor:
    """The matrix of x ↦ conv2d(x, weight, stride=stride, padding=padding) on inputs (C_in, *size), by brute force.

    Column i is the convolution of the i-th basis image (a single 1 in C_in·H·W zeros), flattened; all basis images
    go through ``conv2d`` as one batch. Shape (C_out·H'·W', C_in·H·W). Meant for small inputs.
    """
    channels = weight.shape[1]
    count = channels * size[0] * size[1]
    basis = torch.eye(count, dtype=weight.dtype, device=weight.device).view(count, channels, *size)
    return F.conv2d(basis, weight, stride=stride, padding=padding).flatten(1).T


def check_conv_operator_norm(my_operator_norm: Callable[[Tensor, tuple[int, int], int, int, int], float]) -> None:
    """``my_operator_norm(weight, (H, W), stride, padding, iterations)`` must equal the brute-force ‖A‖₂.

    The reference is ``matrix_norm(conv_operator_matrix(...), ord=2)`` on small inputs, for stride 1 and 2, square
    and non-square sizes; the student's power iteration gets 2,000 iterations and must agree to 1e-6 (relative).
    """
    generator = torch.Generator().manual_seed(1)
    cases = [((4, 2, 5, 5), (9, 8), 2, 2), ((3, 3, 3, 3), (7, 7), 1, 1), ((5, 2, 5, 5), (6, 10), 2, 2)]
    for shape, size, stride, padding in cases:
        weight = torch.randn(shape, generator=generator, dtype=torch.float64)
        exact = torch.linalg.matrix_norm(conv_operator_matrix(weight, size, stride, padding), ord=2)
        mine = float(_run("your operator norm", my_operator_norm, weight, size, stride, padding, OPERATOR_ITERATIONS))
        relative = abs(mine - float(exact)) / float(exact)
        if not relative <= OPERATOR_TOLERANCE:
            raise AssertionError(
                f"your operator norm for a {tuple(shape)} kernel on {size} inputs (stride {stride}, padding "
                f"{padding}) is {mine:.6g}, the brute force gives {float(exact):.6g} (relative error {relative:.2g})"
            )


def randomise_discriminator(discriminator: SNPatchDiscriminator, seed: int) -> SNPatchDiscriminator:
    """``discriminator`` in float64 with random weights, biases and power-iteration vectors, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    discriminator = discriminator.double().eval()
    with torch.no_grad():
        for conv in discriminator.convolutions():
            raw, norm = _spectral_norm_parts(conv)
            raw.normal_(0.0, 0.1, generator=generator)
            conv.bias.normal_(0.0, 0.1, generator=generator)
            norm._u.copy_(F.normalize(torch.randn(norm._u.shape, generator=generator, dtype=torch.float64), dim=0))
            norm._v.copy_(F.normalize(torch.randn(norm._v.shape, generator=generator, dtype=torch.float64), dim=0))
    return discriminator


def check_discriminator(my_discriminator: Callable[[Tensor, Tensor, list[Tensor], list[Tensor]], Tensor]) -> None:
    """``my_discriminator(image, mask, weights, biases)`` must equal ``SNPatchDiscriminator`` with those weights.

    ``weights`` are the spectral-normalised weights W/σ̂ of the six convolutions (eval mode: no power iteration),
    ``biases`` their biases; images (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with 1 = known, on sizes that are
    not multiples of 64.
    """
    for seed, (height, width) in enumerate([(70, 90), (64, 33)]):
        discriminator = randomise_discriminator(SNPatchDiscriminator(base_channels=4), seed)
        generator = torch.Generator().manual_seed(10 + seed)
        image = torch.rand(2, 3, height, width, generator=generator, dtype=torch.float64)
        mask = (torch.rand(2, 1, height, width, generator=generator, dtype=torch.float64) > 0.3).double()
        with torch.no_grad():
            weights = [conv.weight.detach() for conv in discriminator.convolutions()]
            biases = [conv.bias.detach() for conv in discriminator.convolutions()]
            expected = discriminator(image, mask)
            mine = _run("your discriminator", my_discriminator, image, mask, weights, biases)
        _compare(f"your discriminator on a {height}×{width} batch", mine, expected)


def converge_power_iterations(discriminator: SNPatchDiscriminator) -> None:
    """Set every layer's ``_u``, ``_v`` to the top singular vectors of its weight: power iteration then is a fixed point."""
    with torch.no_grad():
        for conv in discriminator.convolutions():
            raw, norm = _spectral_norm_parts(conv)
            left, _, right = torch.linalg.svd(raw.flatten(1), full_matrices=False)
            norm._u.copy_(left[:, 0])
            norm._v.copy_(right[0])


GanStep = Callable[[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.Optimizer, Tensor, Tensor, float, float],
                   None]

#: Accepted weightings c of the discriminator's hinge loss c · (mean relu(1 − D(x)) + mean relu(1 + D(comp))).
D_LOSS_CONVENTIONS = {
    1.0: "the package's unweighted hinge loss, mean relu(1 − D(real)) + mean relu(1 + D(fake))",
    0.5: "DeepFill v2's ½-weighted one, ½·mean relu(1 − D(real)) + ½·mean relu(1 + D(fake))",
}
SMALL_DIFFERENCE = 1e-4  # D off by less: right gradient signs, wrong sizes (Adam's first step is about lr·sign)


def _gan_trainer(folder: str, gan_weight: float):
    from pconv_lessons.training import TrainConfig, Trainer

    config = TrainConfig(model="gated", data="sample", image_size=32, batch_size=2, steps=1, out=folder,
                         lr=1e-3, model_args={"base_channels": 4},
                         loss_args={"disc_channels": 4, "gan_weight": gan_weight, "l1_weight": 1.0},
                         num_workers=0, sample_every=0, checkpoint_every=0, device="cpu")
    trainer = Trainer(config, progress=False)
    trainer.model.double()
    trainer.objective.discriminator.double()
    converge_power_iterations(trainer.objective.discriminator)
    return trainer


def _package_step(gan_weight: float, d_loss_scale: float, start: tuple[nn.Module, nn.Module] | None = None):
    """(generator, discriminator, optimizers, image, mask, l1_weight) before, and (generator, discriminator) after
    one ``Trainer.train_step`` whose discriminator loss is ``d_loss_scale`` · L_D (through Adam's ε, see the module
    docstring). ``start``: the (generator, discriminator) to start from instead of the trainer's fresh weights."""
    with tempfile.TemporaryDirectory() as folder, torch.random.fork_rng(devices=[]):
        trainer = _gan_trainer(folder, gan_weight)
        objective, generator, discriminator = trainer.objective, trainer.model, trainer.objective.discriminator
        if start is not None:
            generator.load_state_dict(start[0].state_dict())
            discriminator.load_state_dict(start[1].state_dict())
        before = copy.deepcopy(generator), copy.deepcopy(discriminator)
        optimizers = [torch.optim.Adam(module.parameters(), lr=objective.learning_rate(phase, 0),
                                       betas=objective.adam_betas)
                      for module, phase in [(before[0], "generator"), (before[1], "discriminator")]]
        for group in trainer.optimizers["discriminator"].param_groups:
            group["eps"] = group["eps"] / d_loss_scale
        image, mask = (torch.stack(parts).double() for parts in zip(*(trainer.pairs[i] for i in range(2))))
        trainer.train_step(image, mask)
    return (*before, optimizers, image, mask, objective.l1_weight), (generator, discriminator)


def _first_difference(mine: nn.Module, package: nn.Module) -> tuple[str, float] | None:
    """(name, largest difference) of the first parameter of ``mine`` beyond STEP_TOLERANCE from ``package``'s."""
    expected = dict(package.named_parameters())
    for name, value in mine.named_parameters():
        error = float((value.detach() - expected[name].detach()).abs().max())
        if not error <= STEP_TOLERANCE:
            return name, error
    return None


def _step_mismatch(mine: tuple[nn.Module, nn.Module], package: tuple[nn.Module, nn.Module], gan_weight: float
                   ) -> str | None:
    """None if (generator, discriminator) ``mine`` equal ``package``'s, else a sentence on the first difference:
    the discriminator's first (its step comes first), then the generator's."""
    for what, index in (("discriminator", 1), ("generator", 0)):
        difference = _first_difference(mine[index], package[index])
        if difference is None:
            continue
        name, error = difference
        message = (f"{what} parameter {name} after your step (gan_weight {gan_weight:g}) differs from the package's "
                   f"training step by up to {error:.3g} (allowed {STEP_TOLERANCE:g})")
        if what == "discriminator" and error < SMALL_DIFFERENCE:
            accepted = "; or ".join(D_LOSS_CONVENTIONS.values())
            message += (". A difference this small means your D loss has the right gradient signs but not the right "
                        "sizes: Adam's first step moves each weight by about lr · the sign of its gradient, and a "
                        "constant factor on the loss changes only how its ε weighs in. The check accepts "
                        f"{accepted}; look at the factor in front of your D loss, or at the loss itself")
        elif what == "generator":
            message += (". Your discriminator step matches; the generator's differs: λ_l1 · (mean|coarse − x| + "
                        "mean|out − x|) + λ_gan · (−mean D(comp, m)) through the updated D, with fresh gradients")
        return message
    return None


def check_gan_step(my_gan_step: GanStep) -> None:
    """``my_gan_step(generator, discriminator, g_optimizer, d_optimizer, image, mask, l1_weight, gan_weight)`` must
    change the parameters of both networks exactly as one ``Trainer.train_step`` with the package's objective.

    The generator is ``GatedGenerator(base_channels=4)``, called as ``generator(image * mask, mask,
    return_coarse=True) -> (coarse, prediction)``; the discriminator ``SNPatchDiscriminator(4)``, called as
    ``discriminator(image, mask)``; both optimizers are Adam with the objective's learning rates and β. Run in
    float64 for the weightings λ_gan = 1 (DeepFill v2's 1:1) and 0.5. The discriminator's loss may be the package's
    unweighted hinge loss or DeepFill v2's ½-weighted one (``D_LOSS_CONVENTIONS``). Raises AssertionError naming
    the first parameter that differs (the discriminator's first) and what a small D difference, or a difference in
    the generator alone, points to.
    """
    for gan_weight in (1.0, 0.5):
        (generator, discriminator, optimizers, image, mask, l1_weight), package = _package_step(gan_weight, 1.0)
        start = copy.deepcopy(generator), copy.deepcopy(discriminator)
        _run("your GAN step", my_gan_step, generator, discriminator, *optimizers, image, mask, l1_weight, gan_weight)
        mismatch = _step_mismatch((generator, discriminator), package, gan_weight)
        if mismatch is None:
            continue
        half = _step_mismatch((generator, discriminator), _package_step(gan_weight, 0.5, start)[1], gan_weight)
        if half is None:
            continue  # DeepFill v2's ½-weighted discriminator loss
        raise AssertionError(half if half.startswith("generator") else mismatch)  # D matches one convention: say so
