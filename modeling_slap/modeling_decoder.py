"""The SLAP caption decoder: a causal transformer with cross-attention to the dense audio tokens."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutput

from .configuration_slap import SlapDecoderConfig
from .modeling_audio import SlapMLP
from .packed_attention import attention_function


def pad_packed(
    packed: torch.Tensor, token_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed `(total_tokens, dim)` → padded `(num_clips, max_tokens, dim)` and its bool mask."""
    num_clips, longest = token_lengths.shape[0], int(token_lengths.max())
    mask = torch.arange(longest, device=packed.device)[None, :] < token_lengths[:, None]
    padded = packed.new_zeros(num_clips, longest, packed.shape[-1])
    padded[mask] = packed
    return padded, mask


class SlapDecoderAttention(nn.Module):
    """Multi-head attention; self-attention (causal) when `memory` is None, else cross-attention."""

    def __init__(self, config: SlapDecoderConfig):
        super().__init__()
        self.config = config  # read at each call: `set_attn_implementation` may change the kernel
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        source = hidden if memory is None else memory
        query, key, value = self._heads(self.q_proj(hidden)), self._heads(self.k_proj(source)), self._heads(self.v_proj(source))
        attend = attention_function(self.config._attn_implementation)
        if memory is None:
            out = attend(query, key, value, is_causal=True)
        else:
            out = attend(query, key, value, attn_mask=memory_mask[:, None, None, :])
        return self.o_proj(out.transpose(1, 2).reshape(hidden.shape))


class SlapDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: causal self-attention, cross-attention to the audio, SwiGLU MLP."""

    def __init__(self, config: SlapDecoderConfig):
        super().__init__()
        self.self_attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = SlapDecoderAttention(config)
        self.cross_attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.cross_attn = SlapDecoderAttention(config)
        self.mlp_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = SlapMLP(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.self_attn_norm(hidden))
        hidden = hidden + self.cross_attn(self.cross_attn_norm(hidden), memory, memory_mask)
        return hidden + self.mlp(self.mlp_norm(hidden))


class SlapCaptionDecoder(nn.Module):
    """Caption head, trained from scratch on the text tokenizer's vocabulary. The output layer is
    tied to `embed_tokens` by the owning model (`_tied_weights_keys`, `config.tie_word_embeddings`).

    `forward(input_ids (batch, seq), audio_states (batch, audio_tokens, audio_dim), audio_mask)`
    → next-token logits `(batch, seq, vocab)`. Captions are right-padded; the causal mask keeps
    real tokens from seeing the padding after them.
    """

    def __init__(self, config: SlapDecoderConfig, audio_hidden_size: int):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.audio_proj = nn.Linear(audio_hidden_size, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(SlapDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        audio_states: torch.Tensor,
        audio_mask: torch.Tensor,
        logits_to_keep: int = 0,
        output_hidden_states: bool = False,
    ) -> CausalLMOutput:
        """`logits (batch, seq, vocab)`; with `logits_to_keep=k > 0` only the last k positions
        (generation needs the last one: the output layer is the decoder's largest matmul).
        `output_hidden_states`: the token states after the embedding and after each block."""
        length = input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(
                f"caption of {length} tokens is longer than max_position_embeddings="
                f"{self.config.max_position_embeddings}"
            )
        positions = torch.arange(length, device=input_ids.device)
        hidden = self.embed_tokens(input_ids) + self.embed_positions(positions)
        memory = self.audio_proj(audio_states)
        all_hidden = (hidden,) if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden, memory, audio_mask)
            if output_hidden_states:
                all_hidden += (hidden,)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return CausalLMOutput(logits=self.lm_head(self.norm(hidden)), hidden_states=all_hidden)
