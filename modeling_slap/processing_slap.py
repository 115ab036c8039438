"""`SlapProcessor`: the text tokenizer and the audio feature extractor behind one call.

Keyword arguments are merged the transformers way (`ProcessorMixin._merge_kwargs`): flat ones go to
every sub-processor that accepts them, nested ones (`text_kwargs={...}`, `audio_kwargs={...}`) to one;
a key passed both ways is an error; the tokenizer's own settings override this processor's defaults.
"""

# No `from __future__ import annotations`: `_merge_kwargs` reads the TypedDicts' annotations as types.
from typing import Any, TypedDict

from transformers import BatchFeature, ProcessorMixin
from transformers.processing_utils import ProcessingKwargs, Unpack
from transformers.utils import TensorType

from .configuration_slap import SlapConfig
from .feature_extraction_slap import SlapFeatureExtractor


class SlapAudioKwargs(TypedDict, total=False):
    """Keyword arguments of `SlapFeatureExtractor.__call__`.

    Unlike transformers' `AudioKwargs`, there is no `padding`, `max_length` or `truncation`: clips are
    kept whole (up to `max_duration`), so those flat arguments configure the tokenizer alone.
    """

    sampling_rate: int | None
    packing: bool | None
    max_duration: float | None
    return_tensors: str | TensorType | None


class SlapProcessorKwargs(ProcessingKwargs, total=False):
    """Per-modality keyword arguments of `SlapProcessor.__call__` and their defaults: captions are
    padded to the longest in the batch and truncated at the tokenizer's `max_length` (without
    truncation a saved tokenizer's `max_length` only drew a warning on every call), and everything
    is returned as torch tensors."""

    audio_kwargs: SlapAudioKwargs
    _defaults = {
        "text_kwargs": {"padding": True, "truncation": True, "return_tensors": "pt"},
        "audio_kwargs": {"return_tensors": "pt"},
    }


class SlapProcessor(ProcessorMixin):
    """Tokenizes captions and turns waveforms into packed log-mel features.

    `processor(text=captions, audio=waveforms, sampling_rate=sr)` returns `input_ids`,
    `attention_mask` (text) and `input_features`, `audio_lengths` (audio, packed by default;
    `packing=False` gives padded features with `audio_attention_mask`) — the keyword arguments of
    `SlapModel.forward`. Text arguments (`max_length=64`, `truncation=True` or
    `text_kwargs={...}`) reach the tokenizer, audio ones (`sampling_rate`, `packing`,
    `max_duration` or `audio_kwargs={...}`) the feature extractor.
    """

    valid_processor_kwargs = SlapProcessorKwargs

    # Spelled out: `ProcessorMixin.get_attributes` reads the sub-processors from this signature.
    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio: Any = None,
        **kwargs: Unpack[SlapProcessorKwargs],
    ) -> BatchFeature:
        """Tokenize `text` and/or compute the features of `audio` (any clip or list of clips that
        `SlapFeatureExtractor` takes); the outputs of both, merged into one `BatchFeature`."""
        if text is None and audio is None:
            raise ValueError("SlapProcessor needs text, audio or both.")
        merged = self._merge_kwargs(
            SlapProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        data = {}
        if text is not None:
            data.update(self.tokenizer(text, **merged["text_kwargs"]))
        if audio is not None:
            data.update(self.feature_extractor(audio, **merged["audio_kwargs"]))
        return BatchFeature(data=data)

    def save_pretrained(self, save_directory, *args, **kwargs) -> list[str]:
        """`ProcessorMixin.save_pretrained`, minus its side effect: with the Auto classes registered it
        writes `auto_map` into the saved config by setting it on the processor, which then differed
        from the same processor reloaded (`from_pretrained` drops it). Saving leaves `self` unchanged."""
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.__dict__.pop("auto_map", None)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        """The sub-processors of a saved folder. The feature extractor is always this package's
        `SlapFeatureExtractor`, loaded by its class rather than through `AutoFeatureExtractor`, so a
        saved processor loads without `register_auto_classes()` and, as remote code, without an Auto
        mapping; the tokenizer is any `AutoTokenizer`, given the folder's `SlapConfig` so that
        `AutoTokenizer` does not resolve the config through `AutoConfig` (which asks whether to run the
        folder's remote code when `slap` is not registered)."""
        if "config" not in kwargs:
            try:
                kwargs = {**kwargs, "config": SlapConfig.from_pretrained(pretrained_model_name_or_path, **kwargs)}
            except OSError:  # a processor saved alone, without the model's config.json
                pass
        tokenizer = cls._load_tokenizer_from_pretrained("tokenizer", pretrained_model_name_or_path, **kwargs)
        kwargs.pop("config", None)
        feature_extractor = SlapFeatureExtractor.from_pretrained(pretrained_model_name_or_path, **kwargs)
        return [feature_extractor, tokenizer]
