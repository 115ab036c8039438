"""SLAP models: the joint audio–text embedding model, captioning and audio classification.

- `SlapModel`: audio + text towers and projections; `forward` returns `logits_per_audio`, which is
  what `pipeline("zero-shot-audio-classification")` reads.
- `SlapForConditionalGeneration`: audio → caption, `generate()` through `GenerationMixin`.
- `SlapForAudioClassification`: a classification head on the pooled audio.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutput
from transformers.utils import ModelOutput
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_slap import SlapConfig
from .losses import captioning_loss, contrastive_loss
from .modeling_audio import SlapAudioModel
from .modeling_base import (
    SlapAudioModelOutput,
    SlapEmbeddingOutput,
    SlapOutput,
    SlapPreTrainedModel,
)
from .modeling_decoder import SlapCaptionDecoder, pad_packed
from .modeling_text import SlapTextModel


class SlapTowersMixin:
    """Embedding API shared by the models that hold the two towers and their projections
    (`audio_model`, `text_model`, `audio_projection`, `text_projection`, `logit_scale`)."""

    def get_audio_features(
        self,
        input_features: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> SlapEmbeddingOutput | tuple:
        """Embed clips; `pooler_output` is the L2-normalised projected embedding `(num_clips, projection_dim)`.
        `max_audio_length` / `audio_length_groups` (the feature extractor's host ints) spare the
        encoder its host reads (see `SlapAudioModel.forward`)."""
        audio = self.audio_model(
            input_features, audio_lengths, audio_attention_mask, output_hidden_states=output_hidden_states,
            return_dict=True, max_audio_length=max_audio_length, audio_length_groups=audio_length_groups,
        )
        return self._embedding_output(audio, self.audio_projection, return_dict)

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SlapEmbeddingOutput | tuple:
        """Embed captions; `pooler_output` is the L2-normalised projected embedding `(batch, projection_dim)`."""
        text = self.text_model(
            input_ids, attention_mask, token_type_ids, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True,
        )
        return self._embedding_output(text, self.text_projection, return_dict)

    def _embedding_output(
        self, tower: ModelOutput, projection: nn.Module, return_dict: bool | None
    ) -> SlapEmbeddingOutput | tuple:
        """A tower's output with its projected, L2-normalised embedding as `pooler_output`."""
        embeds = projection(tower.pooler_output)
        output = SlapEmbeddingOutput(
            pooler_output=F.normalize(embeds, dim=-1), last_hidden_state=tower.last_hidden_state,
            unnormalized_embeds=embeds, hidden_states=tower.hidden_states,
            attentions=getattr(tower, "attentions", None),
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

    def get_input_embeddings(self) -> nn.Module:
        """The text tower's token embeddings (the audio tower's patch embedding is `audio_model`'s)."""
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.text_model.set_input_embeddings(value)

    def logit_scale_value(self) -> torch.Tensor:
        """The inverse temperature, clamped to `logit_scale_max`."""
        return self.logit_scale.exp().clamp(max=self.config.logit_scale_max)


class SlapModel(SlapTowersMixin, SlapPreTrainedModel):
    """The joint audio–text embedding model (contrastive towers and projections)."""

    main_input_name = "input_ids"  # `forward`'s first argument, as in `ClapModel`

    def __init__(self, config: SlapConfig):
        super().__init__(config)
        self.audio_model = SlapAudioModel(config.audio_config)
        self.text_model = SlapTextModel(config)
        self.audio_projection = nn.Linear(config.audio_config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(0.0))
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> SlapOutput | tuple:
        """Score every caption against every clip. `output_hidden_states` fills the towers' outputs
        (`text_model_output.hidden_states`, `audio_model_output.hidden_states`)."""
        if input_ids is None or input_features is None:
            raise ValueError("SlapModel.forward needs both input_ids (text) and input_features (audio)")
        text = self.text_model(
            input_ids, attention_mask, token_type_ids, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True,
        )
        audio = self.audio_model(
            input_features, audio_lengths, audio_attention_mask, output_hidden_states=output_hidden_states,
            return_dict=True, max_audio_length=max_audio_length, audio_length_groups=audio_length_groups,
        )
        text_embeds = F.normalize(self.text_projection(text.pooler_output), dim=-1)
        audio_embeds = F.normalize(self.audio_projection(audio.pooler_output), dim=-1)
        logits_per_text = self.logit_scale_value() * text_embeds @ audio_embeds.t()
        loss = None
        if return_loss:
            if logits_per_text.shape[0] != logits_per_text.shape[1]:
                raise ValueError("return_loss needs as many captions as clips (one matching pair each)")
            loss = contrastive_loss(audio_embeds, text_embeds, self.logit_scale_value())
        output = SlapOutput(
            loss=loss, logits_per_audio=logits_per_text.t(), logits_per_text=logits_per_text,
            audio_embeds=audio_embeds, text_embeds=text_embeds, audio_model_output=audio,
            text_model_output=text,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


class SlapForConditionalGeneration(SlapPreTrainedModel, GenerationMixin):
    """Audio captioning: the audio encoder and the caption decoder.

    Training: `forward(input_ids, input_features, audio_lengths, labels=...)` (teacher forcing; labels
    are the caption ids, -100 where ignored, shifted inside). Inference: `generate(input_features,
    audio_lengths, max_new_tokens=...)` encodes the audio once and decodes from the BOS token; the
    decoder's self-attention and its cross-attention to the audio are cached (`EncoderDecoderCache`,
    `use_cache=False` decodes without a cache, recomputing every position at every step).
    """

    _tied_weights_keys = {"caption_decoder.lm_head.weight": "caption_decoder.embed_tokens.weight"}
    main_input_name = "input_ids"  # what `generate` extends; the audio comes as conditioning

    def __init__(self, config: SlapConfig):
        super().__init__(config)
        self.audio_model = SlapAudioModel(config.audio_config, add_pooling_layer=False)  # dense tokens only
        self.caption_decoder = SlapCaptionDecoder(config.decoder_config, config.audio_config.hidden_size)
        self.post_init()
        decoder = config.decoder_config
        self.generation_config.update(
            bos_token_id=decoder.bos_token_id, eos_token_id=decoder.eos_token_id,
            pad_token_id=decoder.pad_token_id, decoder_start_token_id=decoder.bos_token_id, use_cache=True,
        )  # no max_length: transformers warns on every `generate(max_new_tokens=...)` when one is set

    def get_input_embeddings(self) -> nn.Module:
        return self.caption_decoder.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.caption_decoder.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.caption_decoder.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.caption_decoder.lm_head = value

    def encode_audio(
        self,
        input_features: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense audio tokens, padded per clip: `(num_clips, max_tokens, dim)` and their mask."""
        audio: SlapAudioModelOutput = self.audio_model(
            input_features, audio_lengths, audio_attention_mask, return_dict=True,
            max_audio_length=max_audio_length, audio_length_groups=audio_length_groups,
        )
        bounds = self.audio_model.layout_bounds(max_audio_length, audio_length_groups)
        return pad_packed(audio.last_hidden_state, audio.token_lengths, bounds and bounds["max_seqlen"])

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # transformers' name before 5.x
    def forward(
        self,
        input_ids: torch.Tensor,
        input_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """Next-token logits of the captions `input_ids (batch, seq)` given the audio; with `labels`,
        the captioning loss. `output_hidden_states` returns the decoder's token states. With `cache`
        (or `use_cache=True`, which starts one), `input_ids` continue the cached tokens and the filled
        cache is returned as `cache`."""
        if encoder_hidden_states is None:
            if input_features is None:
                raise ValueError("pass input_features (audio) or encoder_hidden_states")
            encoder_hidden_states, encoder_attention_mask = self.encode_audio(
                input_features, audio_lengths, audio_attention_mask, max_audio_length, audio_length_groups
            )
        if labels is not None and logits_to_keep:
            raise ValueError("labels need the logits of every position: leave logits_to_keep at 0")
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if use_cache and cache is None:
            cache = self.new_cache()
        decoded = self.caption_decoder(
            input_ids, encoder_hidden_states, encoder_attention_mask, logits_to_keep, output_hidden_states, cache
        )
        loss = None if labels is None else captioning_loss(decoded.logits, labels)
        output = CausalLMOutputWithPast(
            loss=loss, logits=decoded.logits, cache=decoded.cache, hidden_states=decoded.hidden_states
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

    def new_cache(self) -> EncoderDecoderCache:
        """A cache for the caption decoder: self-attention, and cross-attention filled on the first step."""
        decoder = self.config.decoder_config
        return EncoderDecoderCache(DynamicCache(config=decoder), DynamicCache(config=decoder))

    def _prepare_cache_for_generation(self, generation_config, model_kwargs: dict, *args, **kwargs) -> None:
        """`GenerationMixin` hook: start `generate` with `new_cache()`. The base class would size its
        cache by `config.get_text_config(decoder=True)`, which is the text *encoder* here, and would not
        keep the cross-attention apart (this model is not `is_encoder_decoder`: the audio comes in as
        `encoder_hidden_states`)."""
        if model_kwargs.get("cache") is not None or generation_config.use_cache is False:
            return super()._prepare_cache_for_generation(generation_config, model_kwargs, *args, **kwargs)
        if generation_config.cache_implementation not in (None, "dynamic"):
            raise ValueError(
                f"cache_implementation={generation_config.cache_implementation!r} is not supported by SLAP's "
                "caption decoder: it caches in an EncoderDecoderCache of DynamicCaches (leave it unset)"
            )
        model_kwargs["cache"] = self.new_cache()

    @torch.no_grad()
    def generate(
        self,
        input_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> torch.LongTensor:
        """Caption clips: from their features, or from audio tokens already encoded by `encode_audio`
        (`encoder_hidden_states (num_clips, max_tokens, dim)` and their `encoder_attention_mask`), e.g.
        to decode the same audio several ways. Extra keyword arguments go to `GenerationMixin.generate`;
        without a length limit, captions may run to the decoder's positions."""
        if encoder_hidden_states is None:
            if input_features is None:
                raise ValueError("generate needs input_features (audio) or encoder_hidden_states")
            encoder_hidden_states, encoder_attention_mask = self.encode_audio(
                input_features, audio_lengths, audio_attention_mask, max_audio_length, audio_length_groups
            )
        elif encoder_attention_mask is None:
            raise ValueError("encoder_hidden_states need their encoder_attention_mask (from encode_audio)")
        generation_config = kwargs.get("generation_config") or self.generation_config
        if all(kwargs.get(key) is None and getattr(generation_config, key, None) is None
               for key in ("max_length", "max_new_tokens")):  # BOS + as many tokens as positions (the last is never fed)
            kwargs["max_new_tokens"] = self.config.decoder_config.max_position_embeddings
        bos = self.config.decoder_config.bos_token_id
        start = torch.full(
            (encoder_hidden_states.shape[0], 1), bos, dtype=torch.long, device=encoder_hidden_states.device
        )
        return super().generate(
            inputs=start, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, **kwargs,
        )


class SlapForAudioClassification(SlapPreTrainedModel):
    """Audio classification: a linear head on the pooled audio vector (`config.num_labels` classes)."""

    def __init__(self, config: SlapConfig):
        super().__init__(config)
        self.audio_model = SlapAudioModel(config.audio_config)
        self.classifier = nn.Linear(config.audio_config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        """The audio tower's patch embedding (what PEFT's `enable_input_require_grads` hooks)."""
        return self.audio_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.audio_model.set_input_embeddings(value)

    def forward(
        self,
        input_features: torch.Tensor,
        audio_lengths: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        max_audio_length: int | None = None,
        audio_length_groups: Sequence[tuple[int, int]] | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        """Class logits `(num_clips, num_labels)`; with `labels`, the loss (cross-entropy, or binary
        cross-entropy for `problem_type="multi_label_classification"`)."""
        audio = self.audio_model(
            input_features, audio_lengths, audio_attention_mask, output_hidden_states=output_hidden_states,
            return_dict=True, max_audio_length=max_audio_length, audio_length_groups=audio_length_groups,
        )
        logits = self.classifier(audio.pooler_output)
        loss = None
        if labels is not None:
            if self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels)
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=audio.hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()
