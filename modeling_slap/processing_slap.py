"""`SlapProcessor`: the text tokenizer and the audio feature extractor behind one call."""

from __future__ import annotations

from transformers import BatchFeature, ProcessorMixin


class SlapProcessor(ProcessorMixin):
    """Tokenizes captions and turns waveforms into packed log-mel features.

    `processor(text=captions, audio=waveforms, sampling_rate=sr)` returns `input_ids`,
    `attention_mask` (text) and `input_features`, `audio_lengths` (audio, packed by default;
    `packing=False` gives padded features with `audio_attention_mask`) — the keyword arguments of
    `SlapModel.forward`.
    """

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio=None,
        sampling_rate: int | None = None,
        packing: bool | None = None,
        return_tensors: str | None = "pt",
        **text_kwargs,
    ) -> BatchFeature:
        if text is None and audio is None:
            raise ValueError("SlapProcessor needs text, audio or both")
        data = {}
        if text is not None:
            text_kwargs.setdefault("padding", True)
            data.update(self.tokenizer(text, return_tensors=return_tensors, **text_kwargs))
        if audio is not None:
            features = self.feature_extractor(
                audio, sampling_rate=sampling_rate, packing=packing, return_tensors=return_tensors
            )
            data.update(features)
        return BatchFeature(data=data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return list(
            dict.fromkeys(self.tokenizer.model_input_names + self.feature_extractor.model_input_names)
        )
