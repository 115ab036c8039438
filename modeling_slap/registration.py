"""Explicit, idempotent registration of SLAP with the `transformers` Auto classes.

Nothing happens at import time. Call `register_auto_classes()` once; afterwards
`AutoModel.from_pretrained(path)` works without `trust_remote_code`, and `save_pretrained` writes
`auto_map` and copies this folder's code next to the weights, so the checkpoint also loads with
`trust_remote_code=True` where this package is not installed.
"""

from __future__ import annotations

import transformers
from transformers import AutoConfig, AutoFeatureExtractor, AutoProcessor

from .configuration_slap import SlapConfig
from .feature_extraction_slap import SlapFeatureExtractor
from .modeling_pretraining import SlapForPreTraining
from .modeling_slap import SlapForAudioClassification, SlapForConditionalGeneration, SlapModel
from .processing_slap import SlapProcessor

# Auto class → SLAP class. Captioning (audio in, text out through `generate`) sits under
# `AutoModelForSpeechSeq2Seq`, transformers' Auto class for that signature; it is not an ASR model.
AUTO_CLASSES = {
    "AutoModel": SlapModel,
    "AutoModelForAudioClassification": SlapForAudioClassification,
    "AutoModelForSpeechSeq2Seq": SlapForConditionalGeneration,
    "AutoModelForPreTraining": SlapForPreTraining,
}


def register_auto_classes() -> None:
    """Register config, models, feature extractor and processor with the Auto classes (idempotent)."""
    AutoConfig.register(SlapConfig.model_type, SlapConfig, exist_ok=True)
    AutoFeatureExtractor.register(SlapConfig, SlapFeatureExtractor, exist_ok=True)
    AutoProcessor.register(SlapConfig, SlapProcessor, exist_ok=True)
    for auto_class, model_class in AUTO_CLASSES.items():
        getattr(transformers, auto_class).register(SlapConfig, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class)
    SlapConfig.register_for_auto_class()
    SlapFeatureExtractor.register_for_auto_class()
    SlapProcessor.register_for_auto_class()
