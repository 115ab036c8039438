"""Every packed attention backend against a plain per-clip reference, for local and global layers,
whole packs and FLAP-style dropped tokens; backends chosen the transformers way."""

from __future__ import annotations

import pytest
import torch

from slap_audio.modeling_slap import SlapAudioConfig, SlapAudioModel
from slap_audio.modeling_slap.attention_backends import packed_attention, prepare_backend
from slap_audio.modeling_slap.packed_attention import build_layout, length_groups

from fresh_process import run_python
from reference_audio import reference_clip

WINDOW, FREQ_PATCHES, HEADS, HEAD_DIM = 2, 4, 2, 8
COLUMNS = [1, 3, 10, 17, 6]  # clips shorter and longer than the ±2-column window
CPU_BACKENDS = ["sdpa", "eager", "flex_attention"]


def reference_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    token_lengths: list[int], time_ids: torch.Tensor, window: int | None,
) -> torch.Tensor:
    """One clip at a time, full score matrix, band mask over time columns when `window` is set."""
    outputs, start = [], 0
    for length in token_lengths:
        q, k, v, time = (t[start : start + length] for t in (query, key, value, time_ids))
        scores = torch.einsum("qhd,khd->hqk", q, k) / q.shape[-1] ** 0.5
        if window is not None:
            scores = scores.masked_fill((time[:, None] - time[None, :]).abs()[None] > window, float("-inf"))
        outputs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), v))
        start += length
    return torch.cat(outputs)


def pack(dropped: bool, seed: int = 0) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """`(token_lengths, time_ids, freq_ids)` of a pack of clips of `COLUMNS` time columns, every patch
    or (`dropped`) a random half of them, in time-major order as FLAP's visible tokens."""
    generator = torch.Generator().manual_seed(seed)
    lengths, times, freqs = [], [], []
    for columns in COLUMNS:
        time = torch.arange(columns).repeat_interleave(FREQ_PATCHES)
        freq = torch.arange(FREQ_PATCHES).repeat(columns)
        if dropped:
            keep = torch.rand(len(time), generator=generator) < 0.5
            keep[0] = True  # every clip keeps a token
            time, freq = time[keep], freq[keep]
        lengths.append(len(time))
        times.append(time)
        freqs.append(freq)
    return lengths, torch.cat(times), torch.cat(freqs)


@pytest.mark.parametrize("implementation", CPU_BACKENDS)
@pytest.mark.parametrize("is_global", [False, True], ids=["local", "global"])
@pytest.mark.parametrize("dropped", [False, True], ids=["all_tokens", "dropped_tokens"])
@pytest.mark.parametrize("max_seqlen", ["read", "given", "bound", "groups"])
def test_backend_equals_per_clip_reference(implementation, is_global, dropped, max_seqlen):
    """`read`: lengths read on the host and grouped by length; `given`: the exact longest clip
    (one group, no host read); `bound`: a loose upper bound (more padding, same result); `groups`:
    given length groups with loose bounds, more groups than clips (dummy clips)."""
    lengths, time_ids, freq_ids = pack(dropped)
    bound = {"given": max(lengths), "bound": max(lengths) + 13}.get(max_seqlen)
    groups = tuple((n, w + 13) for n, w in length_groups(lengths, 8)) if max_seqlen == "groups" else None
    layout = build_layout(
        torch.tensor(lengths), time_ids, freq_ids, WINDOW, FREQ_PATCHES, max_seqlen=bound, clip_groups=groups
    )
    prepare_backend(layout, implementation, WINDOW, needs_local=True)
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(len(time_ids), HEADS, HEAD_DIM, generator=generator) for _ in range(3))
    out = packed_attention(q, k, v, layout, implementation, is_global)
    expected = reference_attention(q, k, v, lengths, time_ids, None if is_global else WINDOW)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def _partitions(ordered: list[int], parts: int, least: int):
    """Every cut of `ordered` into `parts` runs of at least `least` items."""
    if parts == 1:
        if len(ordered) >= least:
            yield [ordered]
        return
    for cut in range(least, len(ordered) + 1):
        for rest in _partitions(ordered[cut:], parts - 1, least):
            yield [ordered[:cut], *rest]


@pytest.mark.parametrize("seed", range(5))
def test_length_groups_cost_least_padding(seed):
    """The groups are the cheapest cut of the sorted lengths into runs of two clips or more (brute
    force over every cut); each width is its run's longest clip."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 800, (11,), generator=generator).tolist()
    groups = length_groups(lengths, 4)
    ordered = sorted(lengths, reverse=True)
    best = min(sum(len(run) * run[0] ** 2 for run in cut) for cut in _partitions(ordered, 4, 2))
    assert sum(n * w**2 for n, w in groups) == best
    assert sum(n for n, _ in groups) == len(lengths) and min(n for n, _ in groups) >= 2
    start = 0
    for n, width in groups:
        assert width == ordered[start] and all(length <= width for length in ordered[start : start + n])
        start += n


def test_length_groups_fixed_count_and_layout():
    """Few clips: copies of the shortest clip fill the groups. Every token reads itself back."""
    assert length_groups([400, 16, 380, 100, 96, 40, 38, 36, 30], 4) == ((2, 400), (2, 100), (3, 40), (2, 30))
    assert length_groups([5, 9], 4) == ((2, 9), (2, 5), (2, 5), (2, 5))
    with pytest.raises(ValueError, match="at least one clip"):
        length_groups([], 4)
    lengths = torch.tensor([40, 16, 380, 100, 96, 400])
    zeros = torch.zeros(int(lengths.sum()), dtype=torch.long)
    layout = build_layout(lengths, zeros, zeros, WINDOW, FREQ_PATCHES, needs_local=False)
    padded = layout.padded_clips
    assert padded.groups == length_groups(lengths.tolist()) == ((2, 400), (2, 100), (2, 40), (2, 16))
    assert layout.max_seqlen == 400
    assert padded.token_lengths.tolist() == [400, 380, 100, 96, 40, 16, 16, 16]  # longest first, a dummy 16
    assert torch.equal(padded.source_index[padded.padded_index], torch.arange(len(zeros)))
    assert len(padded.source_index) == 2 * (400 + 100 + 40 + 16)


def test_varlen_needs_flash_kernels():
    lengths, time_ids, freq_ids = pack(dropped=False)
    layout = build_layout(torch.tensor(lengths), time_ids, freq_ids, WINDOW, FREQ_PATCHES)
    q = torch.randn(len(time_ids), HEADS, HEAD_DIM)
    with pytest.raises(ValueError, match="varlen.*CUDA device and fp16/bf16"):
        packed_attention(q, q, q, layout, "varlen", is_global=True)
    # local layers keep the blocked kernel under "varlen": they run anywhere
    expected = reference_attention(q, q, q, lengths, time_ids, WINDOW)
    torch.testing.assert_close(packed_attention(q, q, q, layout, "varlen", is_global=False), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="varlen_attn runs PyTorch's flash kernels: CUDA only")
@pytest.mark.parametrize("dropped", [False, True], ids=["all_tokens", "dropped_tokens"])
def test_varlen_equals_per_clip_reference(dropped):
    lengths, time_ids, freq_ids = pack(dropped)
    layout = build_layout(torch.tensor(lengths).cuda(), time_ids.cuda(), freq_ids.cuda(), WINDOW, FREQ_PATCHES)
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(len(time_ids), HEADS, HEAD_DIM, generator=generator) for _ in range(3))
    out = packed_attention(*(t.cuda().bfloat16() for t in (q, k, v)), layout, "varlen", is_global=True)
    expected = reference_attention(q, k, v, lengths, time_ids, None)
    torch.testing.assert_close(out.float().cpu(), expected, atol=2e-2, rtol=2e-2)  # bf16 inputs


def _model(implementation: str) -> SlapAudioModel:
    config = SlapAudioConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
        local_window=2, pooling_heads=2, initializer_range=0.3,
    )
    torch.manual_seed(0)
    weights = SlapAudioModel(config).state_dict()
    return SlapAudioModel.from_pretrained(None, config=config, state_dict=weights, attn_implementation=implementation).eval()


@pytest.mark.parametrize("implementation", CPU_BACKENDS)
def test_model_backend_equals_reference_encoder(implementation):
    """The whole encoder under each backend, chosen by `attn_implementation`, against the per-clip
    reference encoder (tests/reference_audio.py)."""
    model = _model(implementation)
    assert model.config._attn_implementation == implementation
    frames = [16 * c for c in COLUMNS]
    features = torch.randn(sum(frames), 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(features, torch.tensor(frames))
    tokens = torch.split(out.last_hidden_state, out.token_lengths.tolist())
    for i, clip in enumerate(torch.split(features, frames)):
        ref_tokens, ref_pooled = reference_clip(model, clip)
        torch.testing.assert_close(tokens[i], ref_tokens, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.pooler_output[i], ref_pooled, atol=1e-5, rtol=1e-5)


def test_from_pretrained_attn_implementation_in_fresh_process(tmp_path):
    """A saved `SlapModel` loads with `attn_implementation="flex_attention"` (and `"varlen"`, whose
    text tower falls back to SDPA) in a fresh process, and embeds as the default SDPA model does,
    also given the layout ints through `get_audio_features`."""
    from slap_audio.modeling_slap import SlapConfig, SlapModel

    torch.manual_seed(0)
    folder = tmp_path / "model"
    SlapModel(SlapConfig.from_size("micro")).save_pretrained(folder)
    output = run_python(f"""
        import torch
        from slap_audio.modeling_slap import SlapModel
        from slap_audio.modeling_slap.packed_attention import length_groups
        features = torch.randn(16 * 13, 64, generator=torch.Generator().manual_seed(0))
        lengths = torch.tensor([16 * 3, 16 * 10])
        embeds = {{}}
        for implementation in ("sdpa", "flex_attention"):
            model = SlapModel.from_pretrained({str(folder)!r}, attn_implementation=implementation).eval()
            assert model.config.audio_config._attn_implementation == implementation
            with torch.no_grad():
                embeds[implementation] = model.get_audio_features(features, lengths).pooler_output
        torch.testing.assert_close(embeds["flex_attention"], embeds["sdpa"], atol=1e-5, rtol=1e-5)
        with torch.no_grad():  # the feature extractor's layout ints, through the public embedding call
            given = model.get_audio_features(
                features, lengths, max_audio_length=16 * 10, audio_length_groups=length_groups([16 * 3, 16 * 10])
            ).pooler_output
        torch.testing.assert_close(given, embeds["flex_attention"], atol=1e-5, rtol=1e-5)
        model = SlapModel.from_pretrained({str(folder)!r}, attn_implementation="varlen")
        print("flex equal;", model.config.audio_config._attn_implementation, model.text_model.encoder.config._attn_implementation)
    """, cwd=tmp_path).stdout
    assert "flex equal; varlen sdpa" in output
