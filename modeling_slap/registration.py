"""Explicit, idempotent registration of SLAP with the `transformers` Auto classes.

Nothing happens at import time, and the concrete classes need nothing: `SlapModel`,
`SlapFeatureExtractor`, `SlapProcessor`... `.from_pretrained(path)` work in any process. Call
`register_auto_classes()` once to use the Auto classes without `trust_remote_code`
(`AutoModel.from_pretrained(path)`); afterwards `save_pretrained` also writes `auto_map`, listing
every Auto class below, and copies this folder's code next to the weights, so the checkpoint loads
with `trust_remote_code=True` where this package is not installed.
"""

from __future__ import annotations

import transformers
from transformers import AutoConfig

from .configuration_slap import SlapConfig
from .feature_extraction_slap import SlapFeatureExtractor
from .modeling_pretraining import SlapForPreTraining
from .modeling_slap import SlapForAudioClassification, SlapForConditionalGeneration, SlapModel
from .processing_slap import SlapProcessor

# Auto class → SLAP class. Captioning (audio in, text out through `generate`) sits under
# `AutoModelForSpeechSeq2Seq`, transformers' Auto class for that signature; it is not an ASR model.
AUTO_CLASSES = {
    "AutoConfig": SlapConfig,
    "AutoModel": SlapModel,
    "AutoModelForAudioClassification": SlapForAudioClassification,
    "AutoModelForSpeechSeq2Seq": SlapForConditionalGeneration,
    "AutoModelForPreTraining": SlapForPreTraining,
    "AutoFeatureExtractor": SlapFeatureExtractor,
    "AutoProcessor": SlapProcessor,
}


def remote_code_auto_map() -> dict[str, str]:
    """The `auto_map` of a saved SLAP folder: every Auto class above, as `module.Class` of the copied code.

    `register_for_auto_class` records one Auto class per class, so a saved `SlapModel` alone would
    list only `AutoConfig` and `AutoModel`; `SlapPreTrainedModel.save_pretrained` writes this instead.
    """
    return {auto_class: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto_class, cls in AUTO_CLASSES.items()}


def register_auto_classes() -> None:
    """Register config, models, feature extractor and processor with the Auto classes (idempotent)."""
    AutoConfig.register(SlapConfig.model_type, SlapConfig, exist_ok=True)
    for auto_class, slap_class in AUTO_CLASSES.items():
        if slap_class is not SlapConfig:
            getattr(transformers, auto_class).register(SlapConfig, slap_class, exist_ok=True)
        slap_class.register_for_auto_class(auto_class)
