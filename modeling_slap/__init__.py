"""SLAP model package: configs, the packed audio encoder, text tower, caption decoder, processor.

Importing registers nothing; call `register_auto_classes()` to use the Auto classes.
"""

from .configuration_slap import NAMED_SIZES, SlapAudioConfig, SlapConfig, SlapDecoderConfig
from .feature_extraction_slap import SlapFeatureExtractor
from .modeling_audio import SlapAudioModel
from .modeling_base import SlapPreTrainedModel
from .modeling_decoder import SlapCaptionDecoder
from .modeling_pretraining import SlapForPreTraining, SlapForPreTrainingOutput
from .modeling_slap import SlapForAudioClassification, SlapForConditionalGeneration, SlapModel
from .modeling_text import SlapTextModel
from .processing_slap import SlapProcessor
from .registration import register_auto_classes

__all__ = [
    "NAMED_SIZES",
    "SlapAudioConfig",
    "SlapAudioModel",
    "SlapCaptionDecoder",
    "SlapConfig",
    "SlapDecoderConfig",
    "SlapFeatureExtractor",
    "SlapForAudioClassification",
    "SlapForConditionalGeneration",
    "SlapForPreTraining",
    "SlapForPreTrainingOutput",
    "SlapModel",
    "SlapPreTrainedModel",
    "SlapProcessor",
    "SlapTextModel",
    "register_auto_classes",
]
