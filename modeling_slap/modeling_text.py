"""The SLAP text tower: any Hugging Face encoder (`AutoModel.from_config(text_config)`) + pooling."""

from __future__ import annotations

import inspect
import os

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .packed_attention import SlapAttentionPooling


class SlapTextModel(nn.Module):
    """Wraps a Hugging Face text encoder and pools its token states.

    `pooling` is `"attention"` (one learned query, multi-head), `"cls"` (first token) or `"mean"`
    (over the attention mask). Pretrained encoder weights load with `load_pretrained_encoder`.
    """

    def __init__(self, text_config: PreTrainedConfig, pooling: str = "attention"):
        super().__init__()
        extra = {}
        encoder_class = AutoModel._model_mapping[type(text_config)]
        if "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters:
            extra["add_pooling_layer"] = False  # the encoder's own pooler would be unused weights
        self.encoder = AutoModel.from_config(text_config, **extra)
        self.pooling = pooling
        hidden = text_config.hidden_size
        if pooling == "attention":
            self.attention_pooling = SlapAttentionPooling(hidden, text_config.num_attention_heads)

    def load_pretrained_encoder(self, path: str | os.PathLike) -> None:
        """Load encoder weights saved with `save_pretrained` (a folder on disk or a Hub id).

        Every weight of our encoder must be present; only the source's own pooler may be left over.
        """
        source = AutoModel.from_pretrained(path)
        missing, unexpected = self.encoder.load_state_dict(source.state_dict(), strict=False)
        unexpected = [k for k in unexpected if not k.startswith("pooler.")]
        if missing or unexpected:
            raise ValueError(
                f"text weights at {path} do not match text_config: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **encoder_kwargs,
    ) -> BaseModelOutputWithPooling:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs)
        hidden = output.last_hidden_state  # (batch, seq, hidden)
        mask = attention_mask.bool()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "mean":
            weights = mask.to(hidden.dtype)[..., None]
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:  # the audio tower's pooling, over the unpadded tokens of each caption
            batch, seq = mask.shape
            caption_ids = torch.arange(batch, device=mask.device)[:, None].expand(batch, seq)[mask]
            pooled = self.attention_pooling(hidden[mask], caption_ids, batch)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=output.hidden_states
        )
