"""The packed audio encoder against a plain per-clip reference, and its packing properties."""

from __future__ import annotations

import pytest
import torch

from slap_audio.modeling_slap import SlapAudioConfig, SlapAudioModel, SlapFeatureExtractor
from slap_audio.modeling_slap.packed_attention import build_layout, local_attention

from conftest import tone
from reference_audio import reference_clip


def _model(**overrides) -> SlapAudioModel:
    torch.manual_seed(0)
    fields = dict(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
        local_window=2, pooling_heads=2,
        initializer_range=0.3,  # large weights: peaked attention, outputs of order 1
    )
    config = SlapAudioConfig(**{**fields, **overrides})
    return SlapAudioModel(config).eval()


def _pack(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(sum(lengths), 64, generator=generator), torch.tensor(lengths)


# columns of 16 frames: 1, 3, 10 and 17 columns — shorter and longer than the ±2-column window
LENGTHS = [16, 48, 160, 272]


def test_packed_equals_per_clip_reference():
    model = _model()
    features, lengths = _pack(LENGTHS)
    with torch.no_grad():
        out = model(features, lengths)
    tokens = torch.split(out.last_hidden_state, out.token_lengths.tolist())
    for i, clip in enumerate(torch.split(features, LENGTHS)):
        ref_tokens, ref_pooled = reference_clip(model, clip)
        torch.testing.assert_close(tokens[i], ref_tokens, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.pooler_output[i], ref_pooled, atol=1e-5, rtol=1e-5)


def test_reference_sees_the_window():
    """The reference must differ when the window changes: the band mask matters for long clips."""
    features, _ = _pack([272])
    narrow = reference_clip(_model(local_window=1), features)[1]
    wide = reference_clip(_model(local_window=8), features)[1]
    assert (narrow - wide).abs().max() > 1e-4


def test_attention_never_crosses_clips():
    """Changing one clip leaves every other clip's tokens untouched."""
    model = _model()
    features, lengths = _pack(LENGTHS)
    changed = features.clone()
    changed[16:64] += 3.0  # the second clip
    with torch.no_grad():
        a, b = model(features, lengths), model(changed, lengths)
    split_a = torch.split(a.last_hidden_state, a.token_lengths.tolist())
    split_b = torch.split(b.last_hidden_state, b.token_lengths.tolist())
    assert not torch.allclose(split_a[1], split_b[1])
    for i in (0, 2, 3):
        torch.testing.assert_close(split_a[i], split_b[i], atol=1e-6, rtol=0)


def test_local_kernel_with_dropped_tokens_matches_band_mask():
    """Blocks stay correct when tokens are missing (FLAP-style dropping keeps time order)."""
    generator = torch.Generator().manual_seed(1)
    time_ids = torch.sort(torch.randint(0, 40, (90,), generator=generator)).values
    time_ids = torch.cat([time_ids, torch.arange(12)])  # a second clip
    token_lengths = torch.tensor([90, 12])
    layout = build_layout(token_lengths, time_ids, torch.zeros_like(time_ids), local_window=3, freq_patches=4)
    q, k, v = (torch.randn(102, 2, 8, generator=generator) for _ in range(3))
    out = local_attention(q, k, v, layout)
    clip = layout.clip_ids
    allowed = (clip[:, None] == clip[None, :]) & ((time_ids[:, None] - time_ids[None, :]).abs() <= 3)
    scores = torch.einsum("qhd,khd->hqk", q, k) / 8**0.5
    expected = torch.einsum("hqk,khd->qhd", scores.masked_fill(~allowed, float("-inf")).softmax(-1), v)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_padded_equals_packed():
    model = _model()
    features, lengths = _pack(LENGTHS)
    padded = torch.zeros(len(LENGTHS), max(LENGTHS), 64)
    mask = torch.zeros(len(LENGTHS), max(LENGTHS), dtype=torch.long)
    for i, clip in enumerate(torch.split(features, LENGTHS)):
        padded[i, : len(clip)] = clip
        mask[i, : len(clip)] = 1
    padded[mask == 0] = 7.0  # padding content must not matter
    with torch.no_grad():
        packed_out = model(features, lengths).pooler_output
        padded_out = model(padded, audio_attention_mask=mask).pooler_output
    torch.testing.assert_close(packed_out, padded_out, atol=1e-5, rtol=1e-5)


def test_alone_equals_in_pack_and_is_deterministic():
    model = _model()
    features, lengths = _pack(LENGTHS)
    with torch.no_grad():
        pack = model(features, lengths).pooler_output
        again = model(features, lengths).pooler_output
        alone = [model(clip, torch.tensor([len(clip)])).pooler_output[0] for clip in torch.split(features, LENGTHS)]
    assert torch.equal(pack, again)
    torch.testing.assert_close(torch.stack(alone), pack, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 64])
def test_batch_sizes_from_waveforms(batch):
    extractor = SlapFeatureExtractor()
    model = _model()
    clips = [tone(0.1 + 0.37 * i, 200 + 20 * i, seed=i) for i in range(batch)]
    inputs = extractor(clips, sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs)
    assert out.pooler_output.shape == (batch, 32)
    assert torch.isfinite(out.pooler_output).all()
    # one pooled vector per clip; distinct clips give distinct vectors
    assert torch.cdist(out.pooler_output, out.pooler_output).add(torch.eye(batch) * 10).min() > 0


def test_ten_minutes_in_one_pass():
    extractor = SlapFeatureExtractor()
    model = _model()
    long_clip = tone(600.0, 300.0)
    inputs = extractor([long_clip, tone(0.1)], sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs)
    assert out.token_lengths.tolist() == [60000 // 16 * 4, 16 // 16 * 4]
    assert torch.isfinite(out.pooler_output).all()


@pytest.mark.parametrize(
    "features, lengths, message",
    [
        (torch.zeros(32, 64), torch.tensor([16, 8]), "sum to"),
        (torch.zeros(24, 64), torch.tensor([24]), "multiples of patch_frames"),
        (torch.zeros(32, 40), torch.tensor([32]), "mel bins"),
        (torch.zeros(32, 64), None, "need audio_lengths"),
        (torch.zeros(2, 32, 64), None, "audio_attention_mask"),
        (torch.zeros(32), torch.tensor([32]), "packed"),
    ],
)
def test_bad_inputs_raise(features, lengths, message):
    with pytest.raises(ValueError, match=message):
        _model()(features, lengths)


def test_mask_token_replaces_patches():
    torch.manual_seed(0)
    model = SlapAudioModel(_model().config, use_mask_token=True).eval()
    features, lengths = _pack([64])
    masked = torch.zeros(16, dtype=torch.bool)
    masked[::2] = True
    with torch.no_grad():
        plain = model(features, lengths).pooler_output
        with_mask = model(features, lengths, bool_masked_pos=masked).pooler_output
    assert not torch.allclose(plain, with_mask)
    with pytest.raises(ValueError, match="use_mask_token"):
        _model()(features, lengths, bool_masked_pos=masked)


@pytest.mark.parametrize("hidden_size", [32, 192])
def test_pooled_vector_starts_at_the_scale_of_the_token_states(hidden_size):
    """At the default `initializer_range` (0.02) the pooling's key/value/output projections start at
    unit gain: the pooled vector has about the RMS of the mean token state of its clip. At 0.02
    it started ~11x smaller and training crawled (eval/ABLATION.md, "The demo's budget")."""
    torch.manual_seed(0)
    config = SlapAudioConfig(
        hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden_size,
        local_window=2, pooling_heads=2,
    )
    model = SlapAudioModel(config).eval()
    features, lengths = _pack(LENGTHS)
    with torch.no_grad():
        out = model(features, lengths)
    tokens = out.last_hidden_state.square().mean().sqrt()
    pooled = out.pooler_output.square().mean().sqrt()
    # the pooled vector averages hundreds of tokens, so it keeps their shared direction only:
    # compare it with the RMS of each clip's mean token state
    means = torch.stack([clip.mean(0) for clip in out.last_hidden_state.split(out.token_lengths.tolist())])
    assert 0.3 < pooled / means.square().mean().sqrt() < 3.0
    assert pooled > 0.05 * tokens
