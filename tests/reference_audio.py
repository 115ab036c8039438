"""A plain, per-clip reference implementation of the SLAP audio encoder, written independently of
the packed kernels: explicit loops over patches, rotation angles per channel pair, full attention
matrices with a band mask. The packed model must agree with it (tests/test_audio_model.py)."""

from __future__ import annotations

import math

import torch

from slap_audio.modeling_slap import SlapAudioModel


def _rms_norm(x: torch.Tensor, norm: torch.nn.RMSNorm) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight


def _rotate(x: torch.Tensor, time: torch.Tensor, freq: torch.Tensor, theta: float) -> torch.Tensor:
    """x (tokens, heads, head_dim): channels j and j + head_dim/2 form a pair; the first quarter of
    pairs turns with the time column, the second with the frequency row."""
    head_dim = x.shape[-1]
    half, quarter = head_dim // 2, head_dim // 4
    out = x.clone()
    for j in range(half):
        position = time if j < quarter else freq
        angle = position.double() * theta ** (-(j % quarter) / quarter)
        cos, sin = angle.cos().float()[:, None], angle.sin().float()[:, None]
        a, b = x[..., j], x[..., j + half]
        out[..., j] = a * cos - b * sin
        out[..., j + half] = b * cos + a * sin
    return out


@torch.no_grad()
def reference_clip(model: SlapAudioModel, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ONE clip `frames (F, bins)` → (token states (tokens, dim), pooled (dim,))."""
    cfg = model.config
    patches, time, freq = [], [], []
    for column in range(frames.shape[0] // cfg.patch_frames):
        for row in range(cfg.freq_patches):
            patch = frames[
                column * cfg.patch_frames : (column + 1) * cfg.patch_frames,
                row * cfg.patch_bins : (row + 1) * cfg.patch_bins,
            ]
            patches.append(patch.reshape(-1))
            time.append(column)
            freq.append(row)
    time, freq = torch.tensor(time), torch.tensor(freq)
    x = torch.stack(patches) @ model.patch_embed.weight.t()
    heads = cfg.num_attention_heads
    head_dim = cfg.hidden_size // heads
    distance = (time[:, None] - time[None, :]).abs()
    for layer in model.layers:
        attn = layer.self_attn
        h = _rms_norm(x, layer.attn_norm)
        q = _rotate((h @ attn.q_proj.weight.t()).view(-1, heads, head_dim), time, freq, cfg.rope_theta)
        k = _rotate((h @ attn.k_proj.weight.t()).view(-1, heads, head_dim), time, freq, cfg.rope_theta)
        v = (h @ attn.v_proj.weight.t()).view(-1, heads, head_dim)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(head_dim)
        if not attn.is_global:
            scores = scores.masked_fill(distance[None] > cfg.local_window, float("-inf"))
        mixed = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(x.shape)
        x = x + mixed @ attn.o_proj.weight.t()
        h = _rms_norm(x, layer.mlp_norm)
        mlp = layer.mlp
        gate = torch.nn.functional.silu(h @ mlp.gate_proj.weight.t())
        x = x + (gate * (h @ mlp.up_proj.weight.t())) @ mlp.down_proj.weight.t()
    x = _rms_norm(x, model.norm)
    pool = model.pooling
    key = (x @ pool.k_proj.weight.t()).view(-1, pool.num_heads, pool.head_dim)
    value = (x @ pool.v_proj.weight.t()).view(-1, pool.num_heads, pool.head_dim)
    weights = (torch.einsum("khd,hd->hk", key, pool.query) / math.sqrt(pool.head_dim)).softmax(-1)
    pooled = torch.einsum("hk,khd->hd", weights, value).reshape(-1) @ pool.o_proj.weight.t()
    return x, pooled
