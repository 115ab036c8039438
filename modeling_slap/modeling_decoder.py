"""The SLAP caption decoder: a causal transformer with cross-attention to the dense audio tokens.

Generation caches both attentions the transformers way, in an `EncoderDecoderCache`: the
self-attention keys/values grow by one token per step (`DynamicCache`), and the cross-attention
keys/values of the audio are computed on the first step and reused by every later one.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_slap import SlapDecoderConfig
from .modeling_audio import SlapMLP
from .packed_attention import attention_function, clip_positions, key_padding_mask, pad_pack


def pad_packed(
    packed: torch.Tensor, token_lengths: torch.Tensor, max_tokens: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed `(total_tokens, dim)` → padded `(num_clips, max_tokens, dim)` and its bool mask.
    `max_tokens` (a host int >= every clip's tokens) spares the host read of the longest clip."""
    if max_tokens is None:
        max_tokens = int(token_lengths.max())
    clip_ids, positions = clip_positions(token_lengths, packed.shape[0])
    padded = pad_pack(packed, clip_ids * max_tokens + positions, token_lengths.shape[0], max_tokens)
    return padded, key_padding_mask(token_lengths, max_tokens)


class SlapDecoderAttention(nn.Module):
    """Multi-head attention of decoder block `layer_idx`: causal self-attention, or cross-attention
    to the audio (`is_cross_attention`). With a `cache`, self-attention appends this step's keys and
    values to the cached ones; cross-attention computes the audio's once and then reads them back."""

    def __init__(self, config: SlapDecoderConfig, layer_idx: int, is_cross_attention: bool = False):
        super().__init__()
        self.config = config  # read at each call: `set_attn_implementation` may change the kernel
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, hidden)` → `(batch, heads, seq, head_dim)`."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def _key_value(
        self, hidden: torch.Tensor, memory: torch.Tensor | None, cache: EncoderDecoderCache | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_cross_attention:
            key, value = self._heads(self.k_proj(hidden)), self._heads(self.v_proj(hidden))
            if cache is None:
                return key, value
            return cache.self_attention_cache.update(key, value, self.layer_idx)
        if cache is not None and cache.is_updated.get(self.layer_idx):
            cached = cache.cross_attention_cache.layers[self.layer_idx]
            return cached.keys, cached.values
        key, value = self._heads(self.k_proj(memory)), self._heads(self.v_proj(memory))
        if cache is not None:
            key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
            cache.is_updated[self.layer_idx] = True
        return key, value

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
    ) -> torch.Tensor:
        """`hidden (batch, seq, hidden)`; cross-attention reads `memory (batch, audio_tokens, hidden)`
        (None once cached) under `memory_mask (batch, audio_tokens)`."""
        query = self._heads(self.q_proj(hidden))
        key, value = self._key_value(hidden, memory, cache)
        attend = attention_function(self.config._attn_implementation)
        if self.is_cross_attention:
            out = attend(query, key, value, attn_mask=memory_mask[:, None, None, :])
        elif query.shape[2] == key.shape[2]:  # no cached past: plain causal
            out = attend(query, key, value, is_causal=True)
        else:  # queries are the last positions: query i sees keys up to past + i
            past = key.shape[2] - query.shape[2]
            causal = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device)
            out = attend(query, key, value, attn_mask=causal.tril(past))
        return self.o_proj(out.transpose(1, 2).reshape(hidden.shape))


class SlapDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: causal self-attention, cross-attention to the audio, SwiGLU MLP."""

    def __init__(self, config: SlapDecoderConfig, layer_idx: int):
        super().__init__()
        self.self_attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = SlapDecoderAttention(config, layer_idx)
        self.cross_attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.cross_attn = SlapDecoderAttention(config, layer_idx, is_cross_attention=True)
        self.mlp_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = SlapMLP(config.hidden_size, config.intermediate_size)

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor,
        cache: EncoderDecoderCache | None = None,
    ) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.self_attn_norm(hidden), cache=cache)
        hidden = hidden + self.cross_attn(self.cross_attn_norm(hidden), memory, memory_mask, cache)
        return hidden + self.mlp(self.mlp_norm(hidden))


class SlapCaptionDecoder(nn.Module):
    """Caption head, trained from scratch on the text tokenizer's vocabulary. The output layer is
    tied to `embed_tokens` by the owning model (`_tied_weights_keys`, `config.tie_word_embeddings`).

    `forward(input_ids (batch, seq), audio_states (batch, audio_tokens, audio_dim), audio_mask)`
    → next-token logits `(batch, seq, vocab)`. Captions are right-padded; the causal mask keeps
    real tokens from seeing the padding after them. With an `EncoderDecoderCache`, `input_ids` are
    the tokens after the cached ones (one per step in generation).
    """

    def __init__(self, config: SlapDecoderConfig, audio_hidden_size: int):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.audio_proj = nn.Linear(audio_hidden_size, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(SlapDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        audio_states: torch.Tensor,
        audio_mask: torch.Tensor,
        logits_to_keep: int = 0,
        output_hidden_states: bool = False,
        cache: EncoderDecoderCache | None = None,
    ) -> CausalLMOutputWithPast:
        """`logits (batch, seq, vocab)`; with `logits_to_keep=k > 0` only the last k positions
        (generation needs the last one: the output layer is the decoder's largest matmul).
        `output_hidden_states`: the token states after the embedding and after each block.
        `cache`: filled in place and returned as `cache`."""
        past = cache.get_seq_length() if cache is not None else 0
        length = past + input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(
                f"caption of {length} tokens is longer than max_position_embeddings="
                f"{self.config.max_position_embeddings}"
            )
        positions = torch.arange(past, length, device=input_ids.device)
        hidden = self.embed_tokens(input_ids) + self.embed_positions(positions)
        cross_cached = cache is not None and all(cache.is_updated.get(i) for i in range(len(self.layers)))
        memory = None if cross_cached else self.audio_proj(audio_states)
        all_hidden = (hidden,) if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden, memory, audio_mask, cache)
            if output_hidden_states:
                all_hidden += (hidden,)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return CausalLMOutputWithPast(
            logits=self.lm_head(self.norm(hidden)), cache=cache, hidden_states=all_hidden
        )
