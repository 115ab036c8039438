"""transformers' own `ModelTesterMixin` and `ConfigTester` run against SLAP's models and configs.

The mixins come from the sdist of the installed transformers
(`transformers_common.common_tests_or_skip_module()`); the whole module skips, saying why, where that
sdist cannot be fetched. One test class per model class, as in transformers'
`tests/models/*/test_modeling_*.py`: a `*ModelTester` builds a tiny config (hidden size 32, two
layers) and inputs in SLAP's packed format — all clips' log-mel frames concatenated, `input_features (total_frames, 64)` with `audio_lengths (num_clips,)`.

A mixin test is skipped only where its premise does not hold for a packed variable-length dual
encoder, and then a pack-aware test beside it checks the same property:
- batching equivalence (row `i` of a batch = the batch of one) → `test_pack_equivalence`;
- attention weights as `(batch, heads, seq, seq)`: the audio tower attends per clip in blocks of
  different sizes and returns none (`has_attentions = False`, which skips the mixin's attention-weight
  and eager-vs-SDPA tests) → `test_eager_matches_sdpa_packed` checks both attention paths on a pack;
- `get_input_embeddings()` an `nn.Embedding`: audio has no vocabulary, the patch embedding is a
  `Linear` → `test_model_get_set_embeddings` is replaced by its patch-embedding version.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/test_conformance_models.py -q
"""

from __future__ import annotations

import tempfile
import unittest

import torch

from slap_audio.modeling_slap import (
    SlapAudioConfig,
    SlapAudioModel,
    SlapConfig,
    SlapDecoderConfig,
    SlapForAudioClassification,
    SlapForConditionalGeneration,
    SlapForPreTraining,
    SlapModel,
    SlapTextModel,
)

from transformers_common import common_tests_or_skip_module

_COMMON = common_tests_or_skip_module()
ModelTesterMixin = _COMMON.modeling.ModelTesterMixin
ConfigTester = _COMMON.configuration.ConfigTester
ids_tensor = _COMMON.modeling.ids_tensor
floats_tensor = _COMMON.modeling.floats_tensor

PACK_NOT_BATCH = (
    "inputs are a pack, not batch-major: input_features (total_frames, bins) has no batch axis to "
    "slice; batching equivalence is checked by test_pack_equivalence below"
)


class SlapModelTester:
    """Tiny SLAP configs and packed inputs: three clips of 2, 3 and 1 time columns, three captions."""

    def __init__(self, parent, is_training: bool = True, num_labels: int = 3):
        self.parent = parent
        self.is_training = is_training
        self.num_labels = num_labels
        self.audio_lengths = [32, 48, 16]  # frames, multiples of patch_frames=16
        self.batch_size = len(self.audio_lengths)
        self.seq_length = 7
        self.num_mel_bins = 64
        self.hidden_size = 32
        self.num_hidden_layers = 2  # one local, one global block (global_every=2)
        self.num_attention_heads = 2
        self.vocab_size = 512
        self.text_config = {
            "model_type": "bert", "vocab_size": self.vocab_size, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 37, "max_position_embeddings": 64,
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        }

    def get_config(self) -> SlapConfig:
        return SlapConfig.from_size(
            "micro",
            text_config=dict(self.text_config),
            audio_config=dict(
                hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                num_attention_heads=self.num_attention_heads, intermediate_size=37 * 2 - 10,
                global_every=2, local_window=1, pooling_heads=2,
            ),
            num_labels=self.num_labels,
        )

    def get_audio_config(self) -> SlapAudioConfig:
        return self.get_config().audio_config

    def audio_inputs(self) -> dict[str, torch.Tensor]:
        frames = sum(self.audio_lengths)
        return {
            "input_features": floats_tensor([frames, self.num_mel_bins]),
            "audio_lengths": torch.tensor(self.audio_lengths),
        }

    def text_inputs(self) -> dict[str, torch.Tensor]:
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        input_ids[:, 0] = 2  # [CLS]
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, 5:] = 0  # right padding, as the tokenizer pads
        attention_mask[2, 3:] = 0
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def prepare_config_and_inputs_for_common(self) -> tuple[SlapConfig, dict]:
        return self.get_config(), {**self.text_inputs(), **self.audio_inputs()}


class SlapAudioModelTester(SlapModelTester):
    """Audio only: the "sequence" of the token states is the pack, 4 tokens per 16-frame column."""

    def __init__(self, parent, is_training: bool = True, joint_config: bool = False):
        super().__init__(parent, is_training)
        self.joint_config = joint_config
        self.seq_length = sum(self.audio_lengths) // 16 * 4

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config() if self.joint_config else self.get_audio_config()
        return config, self.audio_inputs()


class SlapTextModelTester(SlapModelTester):
    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), self.text_inputs()


class PackAwareTests:
    """Our replacements for the mixin tests whose premise is a batch-major input."""

    @unittest.skip(reason=PACK_NOT_BATCH)
    def test_batching_equivalence(self):
        pass

    def _clip_inputs(self, inputs: dict, index: int) -> dict:
        """Inputs of clip/caption `index` alone, sliced out of the pack."""
        packed = ("input_features", "audio_lengths", "bool_masked_pos")
        one = {k: v[index : index + 1] for k, v in inputs.items() if k not in packed}
        if "input_features" in inputs:
            lengths = inputs["audio_lengths"]
            start, length = int(lengths[:index].sum()), int(lengths[index])
            one["input_features"] = inputs["input_features"][start : start + length]
            one["audio_lengths"] = lengths[index : index + 1]
        if "bool_masked_pos" in inputs:  # 4 tokens per 16 frames
            one["bool_masked_pos"] = inputs["bool_masked_pos"][start // 4 : (start + length) // 4]
        return one

    def test_pack_equivalence(self):
        """Every per-clip output of a pack equals that of the clip run alone (to 1e-5)."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        inputs.setdefault("audio_lengths", torch.tensor(self.model_tester.audio_lengths))
        for model_class in self.all_model_classes:
            torch.manual_seed(0)
            model = model_class(config).eval()
            batch = self._prepare_for_class(inputs, model_class)
            if "input_features" not in inputs:
                batch.pop("audio_lengths")
            with torch.no_grad():
                packed = self.per_clip_outputs(model, batch)
                for index in range(self.model_tester.batch_size):
                    one = self._clip_inputs(inputs, index)
                    alone = self.per_clip_outputs(model, self._prepare_for_class(one, model_class))
                    for name, value in alone.items():
                        torch.testing.assert_close(
                            packed[name][index : index + 1], value, atol=1e-5, rtol=1e-5,
                            msg=f"{model_class.__name__}.{name} of clip {index} depends on its pack",
                        )

    def per_clip_outputs(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        """The model's outputs that have one row per clip (or caption)."""
        raise NotImplementedError


class PatchEmbeddingTests:
    """`get_input_embeddings` of an audio model is its patch embedding (what PEFT's
    `enable_input_require_grads` hooks)."""

    def test_model_get_set_embeddings(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            embedding = model.get_input_embeddings()
            self.assertIsInstance(embedding, torch.nn.Linear)
            self.assertEqual(embedding.in_features, 16 * 16)
            replacement = torch.nn.Linear(256, self.model_tester.hidden_size, bias=False)
            model.set_input_embeddings(replacement)
            self.assertIs(model.get_input_embeddings(), replacement)
            self.assertIsNone(model.get_output_embeddings())


class SlapAudioModelTest(PatchEmbeddingTests, PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapAudioModel,)
    has_attentions = False
    test_resize_embeddings = False  # patch embedding, no vocabulary

    def setUp(self):
        self.model_tester = SlapAudioModelTester(self, is_training=False)
        self.config_tester = ConfigTester(self, config_class=SlapAudioConfig, has_text_modality=False, hidden_size=48)

    def test_config(self):
        self.config_tester.run_common_tests()

    def per_clip_outputs(self, model, inputs):
        return {"pooler_output": model(**inputs).pooler_output}

    def test_packed_shapes(self):
        """Packed outputs: token states `(total_tokens, hidden)`, 4 tokens per 16-frame column."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        output = SlapAudioModel(config).eval()(**inputs, output_hidden_states=True)
        tokens = sum(self.model_tester.audio_lengths) // 16 * 4
        self.assertEqual(tuple(output.last_hidden_state.shape), (tokens, 32))
        self.assertEqual(tuple(output.pooler_output.shape), (3, 32))
        self.assertEqual(output.token_lengths.tolist(), [8, 12, 4])
        self.assertEqual(len(output.hidden_states), self.model_tester.num_hidden_layers + 1)

    def test_eager_matches_sdpa_packed(self):
        """`attn_implementation="eager"` runs the plain softmax path and agrees with SDPA on a pack."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        outputs = {}
        for implementation in ("sdpa", "eager"):
            torch.manual_seed(0)
            model = SlapAudioModel.from_pretrained(None, config=config, attn_implementation=implementation,
                                                   state_dict=SlapAudioModel(config).state_dict())
            self.assertEqual(model.config._attn_implementation, implementation)
            with torch.no_grad():
                outputs[implementation] = model.eval()(**inputs).last_hidden_state
        torch.testing.assert_close(outputs["eager"], outputs["sdpa"], atol=1e-5, rtol=1e-5)


class SlapTextModelTest(PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapTextModel,)

    def setUp(self):
        self.model_tester = SlapTextModelTester(self, is_training=False)

    def per_clip_outputs(self, model, inputs):
        return {"pooler_output": model(**inputs).pooler_output}


class SlapModelTest(PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapModel,)
    has_attentions = False
    _is_composite = True
    # the mixin's shape check wants one row of token states per input row; a pack has 4 tokens per 16
    # frames: test_get_audio_features_packed_shape checks the packed shapes
    skip_test_audio_features_output_shape = True

    def setUp(self):
        self.model_tester = SlapModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=SlapConfig, has_text_modality=False, common_properties=["projection_dim"],
            projection_dim=24,
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels:
            inputs["return_loss"] = True
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()

    def per_clip_outputs(self, model, inputs):
        return {
            "audio_embeds": model.get_audio_features(inputs["input_features"], inputs["audio_lengths"]).pooler_output,
            "text_embeds": model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output,
        }

    @unittest.skip(reason="Hidden states live in the towers' outputs: tested by test_towers_hidden_states_output")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="Hidden states live in the towers' outputs: tested by test_towers_hidden_states_output")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    def test_towers_hidden_states_output(self):
        """`forward(output_hidden_states=True)` (or the config flag) fills both towers' hidden states,
        and they carry gradients back from the logits."""
        tester = self.model_tester
        config, inputs = tester.prepare_config_and_inputs_for_common()
        tokens = sum(tester.audio_lengths) // 16 * 4
        for flag_in_config in (False, True):
            config = tester.get_config()
            config.output_hidden_states = flag_in_config
            for sub in config.sub_configs:
                getattr(config, sub).output_hidden_states = flag_in_config
            model = SlapModel(config)
            output = model(**inputs, **({} if flag_in_config else {"output_hidden_states": True}))
            audio, text = output.audio_model_output.hidden_states, output.text_model_output.hidden_states
            self.assertEqual(len(audio), tester.num_hidden_layers + 1)
            self.assertEqual(len(text), tester.text_config["num_hidden_layers"] + 1)
            self.assertEqual(tuple(audio[0].shape), (tokens, tester.hidden_size))
            self.assertEqual(tuple(text[0].shape), (tester.batch_size, tester.seq_length, 32))
            audio[0].retain_grad()
            text[0].retain_grad()
            output.logits_per_audio.sum().backward()
            self.assertIsNotNone(audio[0].grad)
            self.assertIsNotNone(text[0].grad)
        self.assertIsNone(SlapModel(tester.get_config())(**inputs).audio_model_output.hidden_states)

    def test_get_audio_features_packed_shape(self):
        """`get_audio_features`: packed token states `(total_tokens, hidden)`, one embedding per clip."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = SlapModel(config).eval()
        output = model.get_audio_features(inputs["input_features"], inputs["audio_lengths"])
        self.assertEqual(tuple(output.last_hidden_state.shape), (sum(self.model_tester.audio_lengths) // 4, 32))
        self.assertEqual(tuple(output.pooler_output.shape), (self.model_tester.batch_size, config.projection_dim))
        torch.testing.assert_close(output.pooler_output.norm(dim=-1), torch.ones(self.model_tester.batch_size))
        as_tuple = model.get_audio_features(inputs["input_features"], inputs["audio_lengths"], return_dict=False)
        torch.testing.assert_close(as_tuple[0], output.pooler_output)

    def test_save_load_text_model_from_joint_checkpoint(self):
        """`SlapTextModel.from_pretrained` on a `SlapModel` folder loads the trained text tower."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = SlapModel(config).eval()
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            text = SlapTextModel.from_pretrained(folder).eval()
        with torch.no_grad():
            expected = model.text_model(inputs["input_ids"], inputs["attention_mask"]).pooler_output
            got = text(inputs["input_ids"], inputs["attention_mask"]).pooler_output
        torch.testing.assert_close(got, expected)


class SlapForAudioClassificationTest(PatchEmbeddingTests, PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapForAudioClassification,)
    has_attentions = False
    test_resize_embeddings = False  # patch embedding, no vocabulary

    def setUp(self):
        self.model_tester = SlapAudioModelTester(self, joint_config=True)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels:
            inputs["labels"] = torch.zeros(self.model_tester.batch_size, dtype=torch.long)
        return inputs

    def per_clip_outputs(self, model, inputs):
        return {"logits": model(**inputs).logits}


class SlapForConditionalGenerationTest(PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapForConditionalGeneration,)
    # `generate` takes audio and starts every caption from BOS itself, which GenerationTesterMixin's
    # prompt-continuation tests do not model; captioning by `generate` is tested in test_slap_model.py
    all_generative_model_classes = ()
    has_attentions = False

    def setUp(self):
        self.model_tester = SlapModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=SlapDecoderConfig, has_text_modality=True, vocab_size=99, hidden_size=64,
        )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        inputs.pop("attention_mask", None)  # captions are right-padded; the decoder is causal
        if return_labels:
            inputs["labels"] = inputs["input_ids"].clone()
        return inputs

    def test_decoder_config(self):
        self.config_tester.run_common_tests()

    def per_clip_outputs(self, model, inputs):
        return {"logits": model(**inputs).logits}


class SlapPreTrainingTester(SlapModelTester):
    """Inputs fix the student's masked patches (`bool_masked_pos`): outputs are then deterministic."""

    def prepare_config_and_inputs_for_common(self):
        config, inputs = super().prepare_config_and_inputs_for_common()
        tokens = sum(self.audio_lengths) // 16 * 4
        inputs["bool_masked_pos"] = torch.arange(tokens) % 2 == 0  # half of every clip
        return config, inputs


class SlapForPreTrainingTest(PackAwareTests, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (SlapForPreTraining,)
    has_attentions = False
    skip_test_audio_features_output_shape = True  # packed: see SlapModelTest.test_get_audio_features_packed_shape

    def setUp(self):
        self.model_tester = SlapPreTrainingTester(self)

    def per_clip_outputs(self, model, inputs):
        output = model(**inputs)
        return {"audio_embeds": output.audio_embeds, "text_embeds": output.text_embeds}

    @unittest.skip(reason="SlapForPreTraining returns losses and embeddings; its towers' hidden states are "
                   "SlapModel's, tested by SlapModelTest.test_towers_hidden_states_output")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="SlapForPreTraining returns losses and embeddings; its towers' hidden states are "
                   "SlapModel's, tested by SlapModelTest.test_towers_hidden_states_output")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
        inputs["caption_labels"] = labels
        return inputs
