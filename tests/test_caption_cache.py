"""The caption decoder's cache: `generate()` keeps the self-attention keys/values in a `DynamicCache`
and computes the cross-attention keys/values of the audio once (`EncoderDecoderCache`), and gives
exactly what the uncached path (`use_cache=False`, every position recomputed at every step) gives —
for greedy search, beam search and sampling, on a pack of clips of different lengths."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import EncoderDecoderCache

from slap_audio.modeling_slap import SlapConfig, SlapFeatureExtractor, SlapForConditionalGeneration

from conftest import tone

NEW_TOKENS = 12
DURATIONS_AND_PITCHES = ((1.0, 220.0), (2.7, 880.0), (4.3, 3000.0))


@pytest.fixture(scope="module")
def captioner() -> SlapForConditionalGeneration:
    """A micro captioner whose weights are wide enough (std 0.15) that its captions depend on the
    audio and differ from clip to clip (the default init decodes one token for every clip)."""
    torch.manual_seed(0)
    model = SlapForConditionalGeneration(SlapConfig.from_size("micro")).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.15)
    return model


@pytest.fixture(scope="module")
def pack() -> dict[str, torch.Tensor]:
    waves = [tone(seconds, pitch, seed=i) for i, (seconds, pitch) in enumerate(DURATIONS_AND_PITCHES)]
    return dict(SlapFeatureExtractor()(waves, sampling_rate=16_000))


def generate(model, pack, use_cache: bool, **kwargs):
    torch.manual_seed(1)  # sampling draws from the global generator
    return model.generate(
        **pack, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, use_cache=use_cache,
        return_dict_in_generate=True, output_logits=True, **kwargs,
    )


@pytest.mark.parametrize(
    "search", [{}, {"num_beams": 3}, {"num_beams": 3, "num_return_sequences": 2}, {"do_sample": True}],
    ids=["greedy", "beam", "beam_2_returned", "sampling"],
)
def test_cached_generate_equals_uncached(captioner, pack, search):
    cached, uncached = generate(captioner, pack, True, **search), generate(captioner, pack, False, **search)
    assert isinstance(cached.cache, EncoderDecoderCache)
    assert uncached.cache is None
    assert torch.equal(cached.sequences, uncached.sequences)
    assert cached.sequences.shape[1] == 1 + NEW_TOKENS
    assert len(cached.logits) == len(uncached.logits) == NEW_TOKENS
    for step, (with_cache, without) in enumerate(zip(cached.logits, uncached.logits, strict=True)):
        torch.testing.assert_close(with_cache, without, atol=1e-5, rtol=1e-5, msg=f"step {step}")
    # the clips of the pack are captioned differently: the comparison covers their own audio
    first_rows = cached.sequences[:: cached.sequences.shape[0] // len(DURATIONS_AND_PITCHES)]
    assert len({tuple(row.tolist()) for row in first_rows}) > 1


def test_cross_attention_is_computed_once_per_call(captioner, pack):
    """With the cache the audio is projected to keys/values on the first step only; without it, at
    every step."""
    calls = {"audio_proj": 0, "cross_key": 0, "self_key": 0}
    decoder = captioner.caption_decoder
    hooks = [
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
        for name, module in (
            ("audio_proj", decoder.audio_proj),
            ("cross_key", decoder.layers[-1].cross_attn.k_proj),
            ("self_key", decoder.layers[-1].self_attn.k_proj),
        )
    ]
    try:
        counts = {}
        for use_cache in (True, False):
            calls.update(dict.fromkeys(calls, 0))
            generate(captioner, pack, use_cache, num_beams=2)
            counts[use_cache] = dict(calls)
    finally:
        for hook in hooks:
            hook.remove()
    assert counts[True] == {"audio_proj": 1, "cross_key": 1, "self_key": NEW_TOKENS}
    assert counts[False] == dict.fromkeys(calls, NEW_TOKENS)


@pytest.mark.parametrize("chunk", [1, 3])
def test_forward_with_cache_continues_the_caption(captioner, pack, chunk):
    """Feeding a caption `chunk` tokens at a time through one cache gives the logits of one full
    pass (chunks of several tokens take the causal mask offset by the cached length)."""
    memory, memory_mask = captioner.encode_audio(**pack)
    ids = torch.randint(5, captioner.config.decoder_config.vocab_size, (memory.shape[0], 10))
    audio = {"encoder_hidden_states": memory, "encoder_attention_mask": memory_mask}
    with torch.no_grad():
        full = captioner(ids, **audio).logits
        cache, pieces = None, []
        for start in range(0, ids.shape[1], chunk):
            out = captioner(ids[:, start : start + chunk], **audio, cache=cache, use_cache=True)
            cache = out.cache
            pieces.append(out.logits)
    assert cache.get_seq_length() == ids.shape[1]
    assert cache.cross_attention_cache.get_seq_length() == memory.shape[1]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_caption_longer_than_positions_with_cache_is_refused(captioner, pack):
    memory, memory_mask = captioner.encode_audio(**pack)
    limit = captioner.config.decoder_config.max_position_embeddings
    ids = torch.full((memory.shape[0], limit), 5)
    with torch.no_grad():
        cache = captioner(ids, encoder_hidden_states=memory,
                          encoder_attention_mask=memory_mask, use_cache=True).cache
        with pytest.raises(ValueError, match="max_position_embeddings"):
            captioner(ids[:, :1], encoder_hidden_states=memory, encoder_attention_mask=memory_mask, cache=cache)


def test_generate_from_encoded_audio(captioner, pack):
    """`generate(encoder_hidden_states=..., encoder_attention_mask=...)` decodes audio tokens from
    `encode_audio` exactly as `generate(**features)` does; tokens without their mask are refused."""
    memory, memory_mask = captioner.encode_audio(**pack)
    from_features = captioner.generate(**pack, max_new_tokens=6, num_beams=2)
    from_tokens = captioner.generate(
        encoder_hidden_states=memory, encoder_attention_mask=memory_mask, max_new_tokens=6, num_beams=2
    )
    assert torch.equal(from_features, from_tokens)
    with pytest.raises(ValueError, match="encoder_attention_mask"):
        captioner.generate(encoder_hidden_states=memory, max_new_tokens=2)


def test_static_cache_is_refused_with_a_clear_error(captioner, pack):
    with pytest.raises(ValueError, match="cache_implementation='static'"):
        captioner.generate(**pack, max_new_tokens=2, cache_implementation="static")


def test_generate_with_max_new_tokens_is_quiet_and_bounded_by_the_positions(captioner, pack, tmp_path):
    """`generate(max_new_tokens=...)` as in the README: no "both max_new_tokens and max_length"
    warning (the generation config sets no max_length), after a save and load too; without a limit,
    no "model-agnostic default max_length" of 20 either: captions may run to the decoder's positions;
    a request past them is refused by name."""
    import logging
    import warnings

    captioner.save_pretrained(tmp_path)
    loaded = SlapForConditionalGeneration.from_pretrained(tmp_path).eval()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for model in (captioner, loaded):
                assert model.generate(**pack, max_new_tokens=4, min_new_tokens=4).shape[1] == 5
                assert model.generate(**pack, min_new_tokens=30).shape[1] > 21
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert not [w for w in caught if "max_length" in str(w.message)]
    limit = captioner.config.decoder_config.max_position_embeddings  # BOS + limit tokens: the last is never fed
    assert captioner.generate(**pack, max_new_tokens=limit, min_new_tokens=limit).shape[1] == 1 + limit
    with pytest.raises(ValueError, match="max_position_embeddings"):
        captioner.generate(**pack, max_new_tokens=limit + 1, min_new_tokens=limit + 1)
