"""The SLAP text tower: any Hugging Face encoder (`AutoModel.from_config(text_config)`) + pooling."""

from __future__ import annotations

import inspect
import os

import torch
from torch import nn
from transformers import AutoModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .attention_backends import PACKED_ONLY_BACKENDS
from .configuration_slap import SlapConfig
from .modeling_base import SlapPreTrainedModel
from .packed_attention import SlapAttentionPooling


class SlapTextModel(SlapPreTrainedModel):
    """Wraps a Hugging Face text encoder (`config.text_config`) and pools its token states.

    `config.text_pooling` is `"attention"` (one learned query, multi-head), `"cls"` (first token) or
    `"mean"` (over the attention mask). Its config is the joint `SlapConfig` (the encoder can be any
    architecture, so there is no text config class of our own), and its weights sit under
    `text_model.` in `SlapModel` checkpoints: `SlapTextModel.from_pretrained` loads the text tower of
    a `SlapModel` folder. Pretrained encoder weights load with `load_pretrained_encoder`.
    """

    main_input_name = "input_ids"
    input_modalities = ("text",)
    base_model_prefix = "text_model"

    def __init__(self, config: SlapConfig):
        super().__init__(config)
        text_config = config.text_config
        extra = {}
        encoder_class = AutoModel._model_mapping[type(text_config)]
        if "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters:
            extra["add_pooling_layer"] = False  # the encoder's own pooler would be unused weights
        if text_config._attn_implementation in PACKED_ONLY_BACKENDS:  # a kernel of our audio encoder only
            extra["attn_implementation"] = "sdpa"
        self.encoder = AutoModel.from_config(text_config, **extra)
        if config.text_pooling == "attention":
            self.attention_pooling = SlapAttentionPooling(text_config.hidden_size, text_config.num_attention_heads)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

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
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """Encode captions `(batch, seq)`; `pooler_output (batch, hidden)` is the pooled caption vector."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        config = self.config
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
            device = input_ids.device if input_ids is not None else inputs_embeds.device
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        given = {"token_type_ids": token_type_ids, "position_ids": position_ids}  # not every encoder has them
        output = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
            output_attentions=output_attentions if output_attentions is not None else config.output_attentions,
            output_hidden_states=(
                output_hidden_states if output_hidden_states is not None else config.output_hidden_states
            ),
            return_dict=True, **{k: v for k, v in given.items() if v is not None},
        )
        hidden = output.last_hidden_state  # (batch, seq, hidden)
        mask = attention_mask.bool()
        if config.text_pooling == "cls":
            pooled = hidden[:, 0]
        elif config.text_pooling == "mean":
            weights = mask.to(hidden.dtype)[..., None]
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:  # the audio tower's pooling, over the real tokens of each caption (no host read)
            pooled = self.attention_pooling.forward_padded(hidden, mask)
        result = BaseModelOutputWithPooling(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=output.hidden_states,
            attentions=output.attentions,
        )
        return result if (return_dict if return_dict is not None else config.return_dict) else result.to_tuple()
