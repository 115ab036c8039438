"""Band-limited resampling between any two integer sampling rates (Kaiser-windowed sinc).

One low-pass filter, two ways to apply it:

- **polyphase** (rate pairs with a small reduced ratio: 8, 22.05, 32, 44.1, 48, 96, 192 kHz → 16 kHz,
  …): the filter is tabulated at the `new` output phases of the reduced ratio `orig / new` and
  applied as one strided `conv1d` (torchaudio's `sinc_interp_kaiser` method). Exact.
- **Farrow** (every other pair, e.g. 22,254 or 44,099 Hz, where the reduced ratio is too fine to
  tabulate): the same filter is evaluated at each output sample's own fractional position. Each
  tap's filter value is a polynomial in that position (fitted once per rate pair, to 1e-7 of the
  filter's peak), so an output sample is a polynomial whose coefficients are one matrix product of
  its input window — the Farrow structure. Same cut-off, window and length as the polyphase path.

Both keep the time origin (output sample `m` sits at `m / new_freq` seconds, input sample `n` at
`n / orig_freq`), treat samples outside the clip as zeros, are deterministic and run in chunks of
bounded memory, so hour-long clips are fine.

This file is shipped as Hub remote code: it imports only torch.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch
import torch.nn.functional as F

# Windowed-sinc low-pass (Kaiser window). 24 zero crossings each side, cut-off at 95 % of the
# lower Nyquist frequency and beta = 10 give a flat pass band to ~7 kHz at 16 kHz output and more
# than 30 dB rejection 200 Hz above the Nyquist frequency (> 60 dB from 500 Hz above).
RESAMPLE_LOWPASS_WIDTH = 24
RESAMPLE_ROLLOFF = 0.95
RESAMPLE_KAISER_BETA = 10.0
# Rate pairs whose polyphase kernel would exceed this many coefficients use the Farrow path.
_MAX_POLYPHASE_KERNEL = 2**20
# Output phases the polyphase conv1d computes at least (its output channels; see
# `_resample_polyphase`).
_MIN_RESAMPLE_PHASES = 16
# Farrow polynomials: largest degree tried, and the accepted error of each tap's polynomial
# relative to the filter's peak (float32 rounding of the tabulated kernel is ~6e-8).
_MAX_FARROW_DEGREE = 16
_FARROW_TOLERANCE = 1e-7
# Bound on temporaries (16 MB of float32): conv1d columns or gathered input windows per chunk.
# It also keeps them in reusable, cache-friendly buffers (larger, freshly mapped buffers measured
# 2-3x slower).
_RESAMPLE_CHUNK_ELEMENTS = 2**22


def validate_sampling_rate(value: object, name: str = "sampling_rate") -> int:
    """`value` as a positive whole number of Hz (an `int`, a numpy integer or an integral float).

    Raises:
        ValueError: for a bool, a non-number, NaN, infinity, a fraction or a rate <= 0.
    """
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number of Hz, got {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return int(value)


def _windowed_sinc(t: torch.Tensor) -> torch.Tensor:
    """Kaiser-windowed sinc at `t` zero crossings from its centre (float64, zero beyond the
    window up to rounding)."""
    width = RESAMPLE_LOWPASS_WIDTH
    t = t.clamp(-width, width)
    beta = torch.tensor(RESAMPLE_KAISER_BETA, dtype=torch.float64)
    window = torch.i0(beta * torch.sqrt(1.0 - (t / width) ** 2)) / torch.i0(beta)
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return sinc * window


@functools.lru_cache(maxsize=16)
def _polyphase_kernel(orig_freq: int, new_freq: int) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernel with `new_freq` phases (rates in units of their gcd or a
    small multiple of it).

    Returns:
        `(kernel, pad)`: kernel of shape `(new_freq, 1, 2 * pad + orig_freq)` for `conv1d` with
        stride `orig_freq`, and the number of zeros to pad on the left.
    """
    base_freq = min(orig_freq, new_freq) * RESAMPLE_ROLLOFF
    pad = math.ceil(RESAMPLE_LOWPASS_WIDTH * orig_freq / base_freq)
    # Input sample offsets (in input periods) seen by each of the `new_freq` output phases.
    taps = torch.arange(-pad, pad + orig_freq, dtype=torch.float64)[None, :] / orig_freq
    phases = torch.arange(0, -new_freq, -1, dtype=torch.float64)[:, None] / new_freq
    kernel = _windowed_sinc((phases + taps) * base_freq) * (base_freq / orig_freq)
    return kernel.to(torch.float32)[:, None, :], pad


def _polyphase_layout(orig_freq: int, new_freq: int) -> tuple[int, int, int]:
    """`(orig, new, kernel_size)`: the rates reduced by their gcd, scaled back up to at least
    `_MIN_RESAMPLE_PHASES` output phases (the same filter, but conv1d runs ~5x faster with 16
    output channels than with 1 or 2: 48 → 16 kHz reduces to 3 → 1), and the number of
    coefficients of their polyphase kernel."""
    gcd = math.gcd(orig_freq, new_freq)
    scale = -(-_MIN_RESAMPLE_PHASES // (new_freq // gcd))
    orig, new = orig_freq // gcd * scale, new_freq // gcd * scale
    taps = 2 * math.ceil(RESAMPLE_LOWPASS_WIDTH * orig / (min(orig, new) * RESAMPLE_ROLLOFF)) + orig
    return orig, new, new * taps


def _resample_polyphase(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Output sample `j * new + p` (phase `p`) is the dot product of phase `p`'s filter with the
    input from sample `j * orig - pad`, i.e. a `conv1d` with stride `orig`."""
    kernel, pad = _polyphase_kernel(orig, new)  # (new, 1, taps)
    taps = kernel.shape[-1]
    num_out = math.ceil(new * waveform.shape[0] / orig)
    num_positions = -(-num_out // new)  # conv outputs, `new` samples each
    padded = F.pad(waveform, (pad, num_positions * orig + taps))  # zeros beyond the clip
    chunk = max(1, _RESAMPLE_CHUNK_ELEMENTS // taps)
    pieces = []
    for first in range(0, num_positions, chunk):
        last = min(first + chunk, num_positions)
        window = padded[first * orig : (last - 1) * orig + taps]
        out = F.conv1d(window[None, None], kernel, stride=orig)  # (1, new, last - first)
        pieces.append(out[0].t().reshape(-1))  # interleave phases → (new * (last - first),)
    resampled = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
    return resampled[:num_out]


@functools.lru_cache(maxsize=16)
def _farrow_coefficients(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """Farrow form of the low-pass for the reduced ratio `orig / new`.

    An output sample at input position `n0 + a` (`n0` whole, `0 <= a < 1`) reads the taps
    `n0 + k`, `-half <= k <= half + 1`. Tap `k`'s filter value `h(k - a)` is approximated by a
    polynomial in `z = 2a - 1`, least-squares fitted on Chebyshev nodes; the degree is the lowest
    whose error on a fine grid of `a` is within `_FARROW_TOLERANCE` of the filter's peak. The two
    outermost taps at each end are left out of that check: they hold the window's end points,
    where the filter (at ~2e-5 of its peak there) has a kink that polynomials fit only to ~1.5e-7.

    Returns:
        `(coefficients, half)`: float32 coefficients of shape `(degree + 1, 2 * half + 2)`, row
        `d` multiplying `z ** d`, and the half-width `half` of the window in input samples.
    """
    step = RESAMPLE_ROLLOFF * min(orig, new) / orig  # zero crossings per input sample
    half = math.ceil(RESAMPLE_LOWPASS_WIDTH / step)
    offsets = torch.arange(-half, half + 2, dtype=torch.float64)  # k

    def filter_values(z: torch.Tensor) -> torch.Tensor:  # (points,) → (points, taps)
        return _windowed_sinc((offsets[None, :] - (z[:, None] + 1) / 2) * step) * step

    check = torch.linspace(-1.0, 1.0, 1025, dtype=torch.float64)
    target = filter_values(check)
    for degree in range(1, _MAX_FARROW_DEGREE + 1):
        nodes = torch.cos(math.pi * (torch.arange(4 * degree, dtype=torch.float64) + 0.5) / (4 * degree))
        powers = torch.arange(degree + 1, dtype=torch.float64)
        coefficients = torch.linalg.lstsq(nodes[:, None] ** powers, filter_values(nodes)).solution
        error = float((check[:, None] ** powers @ coefficients - target)[:, 2:-2].abs().max())
        if error <= _FARROW_TOLERANCE * step:
            break
    return coefficients.to(torch.float32), half


def _resample_farrow(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Output sample `m` sits at input position `m * orig / new = n0 + a`: its value is
    `sum_d z ** d * (coefficients[d] @ window)` with `z = 2a - 1` and `window` the input samples
    `n0 - half … n0 + half + 1`, evaluated by Horner's rule."""
    coefficients, half = _farrow_coefficients(orig, new)  # (degree + 1, taps)
    taps = coefficients.shape[1]
    num_out = math.ceil(new * waveform.shape[0] / orig)
    # The last output's window ends at sample n0 + half + 1 <= samples + half.
    windows = F.pad(waveform, (half, half + 1)).unfold(0, taps, 1)  # view: (samples, taps)
    chunk = max(1, _RESAMPLE_CHUNK_ELEMENTS // taps)
    pieces = []
    for first in range(0, num_out, chunk):
        position = torch.arange(first, min(first + chunk, num_out), dtype=torch.int64) * orig
        start = position // new  # n0: index of the first tap in the padded clip
        z = ((position % new).to(torch.float64) * (2.0 / new) - 1.0).to(torch.float32)
        # (degree + 1, chunk); this operand order runs ~1.5x faster than windows @ coefficients.T
        terms = coefficients @ windows[start].t()
        out = terms[-1]
        for degree in range(terms.shape[0] - 2, -1, -1):
            out = torch.addcmul(terms[degree], out, z)
        pieces.append(out)
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0]


def resample_waveform(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """Band-limited resampling of a 1-D float waveform from any rate to any rate.

    Rate pairs with a small reduced ratio (every common audio rate) use the exact polyphase
    filter; others use the same filter in Farrow form (see the module docstring). The low-pass
    cut-off is 95 % of the lower Nyquist frequency.

    Args:
        waveform (`torch.Tensor`): float32 tensor of shape `(samples,)`.
        orig_freq (`int`): sampling rate of `waveform` in Hz (a positive whole number).
        new_freq (`int`): target sampling rate in Hz (a positive whole number).

    Returns:
        `torch.Tensor`: float32 tensor of shape `(ceil(samples * new_freq / orig_freq),)`.

    Raises:
        ValueError: if a rate is not a positive whole number.
    """
    orig_freq = validate_sampling_rate(orig_freq, "orig_freq")
    new_freq = validate_sampling_rate(new_freq, "new_freq")
    if orig_freq == new_freq or waveform.shape[0] == 0:
        return waveform
    orig, new, kernel_size = _polyphase_layout(orig_freq, new_freq)
    if kernel_size <= _MAX_POLYPHASE_KERNEL:
        return _resample_polyphase(waveform, orig, new)
    gcd = math.gcd(orig_freq, new_freq)
    return _resample_farrow(waveform, orig_freq // gcd, new_freq // gcd)
