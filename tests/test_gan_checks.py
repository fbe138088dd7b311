"""The lesson-08 GAN check helpers: the right student code passes, a planted wrong version of each step fails."""

import pytest
import torch
import torch.nn.functional as F

from pconv_lessons.course.gan_checks import (
    check_conv_operator_norm,
    check_discriminator,
    check_gan_step,
    check_spectral_norm,
    conv_operator_matrix,
)
from pconv_lessons.models import composite


def spectral_norm_by_hand(weight, u, v, iterations, eps, transpose_second=True, renormalise_v=True):
    matrix = weight.flatten(1)
    for _ in range(iterations):
        u = F.normalize(matrix @ v, dim=0, eps=eps)
        v = (matrix.T if transpose_second else matrix.T.flip(0)) @ u
        v = F.normalize(v, dim=0, eps=eps) if renormalise_v else v
    sigma = u @ matrix @ v
    return weight / sigma, sigma


def operator_norm(weight, size, stride, padding, iterations, adjoint=True, square_root=False):
    x = torch.randn(1, weight.shape[1], *size, dtype=weight.dtype, generator=torch.Generator().manual_seed(0))
    for _ in range(iterations):
        y = F.conv2d(x, weight, stride=stride, padding=padding)
        if adjoint:
            extra = [size[i] - ((y.shape[-2 + i] - 1) * stride - 2 * padding + weight.shape[-2 + i]) for i in range(2)]
            x = F.conv_transpose2d(y, weight, stride=stride, padding=padding, output_padding=extra)
        else:  # a plausible slip: the gradient of ‖y‖² taken as y itself, resampled to the input's size
            x = F.interpolate(y.sum(1, keepdim=True).expand(-1, weight.shape[1], -1, -1), size=size)
        x = x / x.norm()
    norm = F.conv2d(x, weight, stride=stride, padding=padding).norm()
    return float(norm.sqrt() if square_root else norm)


def discriminator_by_hand(image, mask, weights, biases, padding=2, last_activation=True, image_first=True, slope=0.2):
    channels = [2 * image - 1, mask] if image_first else [mask, 2 * image - 1]
    x = torch.cat(channels, dim=1)
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        x = F.conv2d(x, weight, bias, stride=2, padding=padding)
        if last_activation or index < len(weights) - 1:
            x = F.leaky_relu(x, slope)
    return x


def gan_step(generator, discriminator, g_optimizer, d_optimizer, image, mask, l1_weight, gan_weight,
             detach=True, loss="hinge", g_sign=-1.0, fixed_gan_weight=None, d_scale=1.0):
    gan_weight = gan_weight if fixed_gan_weight is None else fixed_gan_weight
    g_optimizer.zero_grad()
    d_optimizer.zero_grad()
    coarse, prediction = generator(image * mask, mask, return_coarse=True)
    completed = composite(prediction, image, mask)
    fake_input = completed.detach() if detach else completed
    real, fake = discriminator(torch.cat([image, fake_input]), torch.cat([mask, mask])).chunk(2)
    if loss == "hinge":
        d_loss = d_scale * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    else:  # the non-saturating loss of the original GAN
        d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()
    d_loss.backward(retain_graph=not detach)
    d_optimizer.step()
    if detach:
        g_optimizer.zero_grad()  # the right code may clear here too; the planted one keeps D's gradient in G
    scores = discriminator(completed, mask)
    adversarial = g_sign * scores.mean() if loss == "hinge" else F.softplus(-scores).mean()
    l1 = (coarse - image).abs().mean() + (prediction - image).abs().mean()
    (l1_weight * l1 + gan_weight * adversarial).backward()
    g_optimizer.step()


def test_spectral_norm_check_passes_the_right_power_iteration():
    check_spectral_norm(lambda w, u, v, n, eps: spectral_norm_by_hand(w, u, v, n, eps))


@pytest.mark.parametrize("mistake", [
    {"transpose_second": False},  # v from a scrambled Wᵀ
    {"renormalise_v": False},     # v left unnormalised
])
def test_spectral_norm_check_fails_a_wrong_power_iteration(mistake):
    with pytest.raises(AssertionError, match="differs from the reference"):
        check_spectral_norm(lambda w, u, v, n, eps: spectral_norm_by_hand(w, u, v, n, eps, **mistake))


def test_spectral_norm_check_fails_one_iteration_too_few_and_the_squared_sigma():
    with pytest.raises(AssertionError, match="differs from the reference"):
        check_spectral_norm(lambda w, u, v, n, eps: spectral_norm_by_hand(w, u, v, max(n - 1, 1), eps))
    with pytest.raises(AssertionError, match="differs from the reference"):
        check_spectral_norm(lambda w, u, v, n, eps: (lambda r: (w / r[1] ** 2, r[1] ** 2))(
            spectral_norm_by_hand(w, u, v, n, eps)))


def test_operator_matrix_is_the_convolution():
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(3, 2, 5, 5, generator=generator, dtype=torch.float64)
    x = torch.randn(2, 7, 9, generator=generator, dtype=torch.float64)
    matrix = conv_operator_matrix(weight, (7, 9), stride=2, padding=2)
    expected = F.conv2d(x[None], weight, stride=2, padding=2).flatten()
    assert torch.allclose(matrix @ x.flatten(), expected, atol=1e-12)


def test_operator_norm_check_passes_power_iteration_with_the_adjoint():
    check_conv_operator_norm(operator_norm)


@pytest.mark.parametrize("wrong", [
    lambda w, size, s, p, n: operator_norm(w, size, s, p, n, square_root=True),
    lambda w, size, s, p, n: operator_norm(w, size, s, p, n, adjoint=False),
    lambda w, size, s, p, n: float(torch.linalg.matrix_norm(w.flatten(1), ord=2)),  # the reshaped kernel's σ
])
def test_operator_norm_check_fails_wrong_estimates(wrong):
    with pytest.raises(AssertionError, match="brute force gives"):
        check_conv_operator_norm(wrong)


def test_discriminator_check_passes_the_right_network():
    check_discriminator(discriminator_by_hand)


@pytest.mark.parametrize("mistake", [
    {"padding": 1}, {"last_activation": False}, {"image_first": False}, {"slope": 0.1},
])
def test_discriminator_check_fails_a_wrong_network(mistake):
    with pytest.raises(AssertionError):
        check_discriminator(lambda image, mask, w, b: discriminator_by_hand(image, mask, w, b, **mistake))


def test_discriminator_check_fails_images_not_moved_to_minus_one_one():
    with pytest.raises(AssertionError, match="differs from the reference"):
        check_discriminator(lambda image, mask, w, b: discriminator_by_hand((image + 1) / 2, mask, w, b))


def test_gan_step_check_passes_the_right_step():
    check_gan_step(gan_step)


@pytest.mark.parametrize("mistake, names", [
    ({"detach": False}, "generator parameter .* discriminator step matches"),  # D's loss also trains G
    ({"loss": "non-saturating"}, "discriminator parameter"),                    # the original GAN's loss
    ({"g_sign": 1.0}, "generator parameter .* discriminator step matches"),     # G lowers its own score
    ({"fixed_gan_weight": 0.1}, "generator parameter .* discriminator step matches"),  # ignores its weighting
])
def test_gan_step_check_fails_a_planted_mistake(mistake, names):
    with pytest.raises(AssertionError, match=f"^{names}"):
        check_gan_step(lambda *args: gan_step(*args, **mistake))


def test_gan_step_check_accepts_deepfill_v2s_half_weighted_d_loss():
    check_gan_step(lambda *args: gan_step(*args, d_scale=0.5))  # neuralgym's gan_hinge_loss: ½·hinge_pos + ½·hinge_neg


def test_gan_step_check_blames_the_generator_when_a_half_weighted_d_is_right():
    with pytest.raises(AssertionError, match="^generator parameter .* discriminator step matches"):
        check_gan_step(lambda *args: gan_step(*args, d_scale=0.5, g_sign=1.0))


@pytest.mark.parametrize("d_scale", [2.0, 0.25])
def test_gan_step_check_fails_another_d_loss_factor_and_says_why(d_scale):
    with pytest.raises(AssertionError, match="(?s)^discriminator parameter.*constant factor.*½-weighted"):
        check_gan_step(lambda *args: gan_step(*args, d_scale=d_scale))


def test_spectral_norm_check_accepts_sigma_as_a_python_float():
    check_spectral_norm(lambda w, u, v, n, eps: (lambda r: (r[0], r[1].item()))(spectral_norm_by_hand(w, u, v, n, eps)))
