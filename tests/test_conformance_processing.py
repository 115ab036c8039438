"""transformers' own `SequenceFeatureExtractionTestMixin` and `ProcessorTesterMixin` run against SLAP.

The mixins come from the sdist of the installed transformers
(`transformers_common.common_tests_or_skip_module()`); the whole module skips, saying why, where that
sdist cannot be fetched. As in transformers'
`tests/models/clap/test_feature_extraction_clap.py` and `test_processing_clap.py`: a tester gives the
feature extractor's settings and per-clip log-mel inputs for `pad()`, and the processor test builds
its components here (the offline test tokenizer, no Hub). No mixin test is skipped by this module;
the mixin skips on its own what SLAP's processor has no part for (images, videos, chat templates).

SLAP never assumes a sampling rate, and the mixin calls the processor without one, so its audio
inputs are given as clips that carry their rate, `{"array": samples, "sampling_rate": 16000}` (the
schema of a decoded `datasets.Audio` value).

Below the mixins, loading as users do it, each in a new interpreter (the test process has the Auto
classes registered by conftest, which hides what a user hits): `SlapProcessor` and
`SlapFeatureExtractor.from_pretrained` with the package installed and no `register_auto_classes()`
call, and `AutoProcessor.from_pretrained(..., trust_remote_code=True)` where `slap_audio` cannot be
imported at all.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/test_conformance_processing.py -q
"""

from __future__ import annotations

import unittest
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BatchFeature

from slap_audio.modeling_slap import SlapFeatureExtractor, SlapProcessor, register_auto_classes

from conftest import build_test_tokenizer, tone
from fresh_process import run_python
from transformers_common import common_tests_or_skip_module

_COMMON = common_tests_or_skip_module()
SequenceFeatureExtractionTestMixin = _COMMON.sequence_feature_extraction.SequenceFeatureExtractionTestMixin
ProcessorTesterMixin = _COMMON.processing.ProcessorTesterMixin


class SlapFeatureExtractionTester:
    """A small, non-default `SlapFeatureExtractor` (32 mel bins at 8 kHz) and seven log-mel inputs of
    increasing length (40 to 196 frames, `(frames, feature_size)` each) for the mixin's `pad()` tests."""

    def __init__(self, parent, batch_size: int = 7, min_seq_length: int = 40, max_seq_length: int = 200):
        self.parent = parent
        self.batch_size = batch_size
        self.min_seq_length = min_seq_length
        self.max_seq_length = max_seq_length
        self.seq_length_diff = (max_seq_length - min_seq_length) // (batch_size - 1)
        self.feature_size = 32
        self.padding_value = 0.0  # the mixin's padding checks assume 0 beyond the longest input
        self.rng = np.random.default_rng(0)

    def prepare_feat_extract_dict(self) -> dict:
        return {
            "feature_size": self.feature_size,
            "sampling_rate": 8000,
            "win_length": 200,
            "hop_length": 80,
            "n_fft": 256,
            "f_max": 4000.0,
            "padding_value": self.padding_value,
            "return_attention_mask": False,
            "packing": False,
        }

    def prepare_inputs_for_common(self, equal_length: bool = False, numpify: bool = False) -> list:
        if equal_length:
            lengths = [self.max_seq_length] * self.batch_size
        else:
            lengths = range(self.min_seq_length, self.max_seq_length, self.seq_length_diff)
        inputs = [self.rng.random((length, self.feature_size)) for length in lengths]
        return inputs if numpify else [x.tolist() for x in inputs]


class SlapFeatureExtractionTest(SequenceFeatureExtractionTestMixin, unittest.TestCase):
    feature_extraction_class = SlapFeatureExtractor

    def setUp(self):
        self.feat_extract_tester = SlapFeatureExtractionTester(self)

    def test_pad_matches_padded_output(self):
        """`pad()` of the clips' own features = the padded output of `__call__` (`packing=False`),
        and its `attention_mask` = `audio_attention_mask`."""
        extractor = self.feature_extraction_class(**self.feat_extract_dict)
        clips = [tone(seconds, rate=8000, seed=i) for i, seconds in enumerate((0.3, 1.1, 0.7))]
        packed = extractor(clips, sampling_rate=8000, packing=True)
        padded = extractor(clips, sampling_rate=8000, packing=False)
        per_clip = list(packed["input_features"].split(packed["audio_lengths"].tolist()))
        result = extractor.pad({"input_features": per_clip}, return_attention_mask=True, return_tensors="pt")
        torch.testing.assert_close(result["input_features"], padded["input_features"], atol=0, rtol=0)
        assert torch.equal(result["attention_mask"].long(), padded["audio_attention_mask"])

    def test_pad_of_a_list_of_outputs(self):
        """`pad()` as a collate function over single-clip outputs, the way it is used in a DataLoader."""
        extractor = self.feature_extraction_class(**self.feat_extract_dict)
        clips = [tone(seconds, rate=8000, seed=i) for i, seconds in enumerate((0.5, 0.2))]
        outputs = [{"input_features": extractor(clip, sampling_rate=8000, packing=True)["input_features"]}
                   for clip in clips]
        result = extractor.pad(outputs, padding="max_length", max_length=96, return_attention_mask=True,
                               return_tensors="np")
        assert isinstance(result, BatchFeature)
        assert result["input_features"].shape == (2, 96, 32)
        assert result["attention_mask"].sum(-1).tolist() == [len(x["input_features"]) for x in outputs]
        assert np.all(result["input_features"][1, len(outputs[1]["input_features"]):] == 0.0)


class SlapProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = SlapProcessor

    @classmethod
    def _setup_tokenizer(cls):
        return build_test_tokenizer()

    @classmethod
    def _setup_feature_extractor(cls):
        return SlapFeatureExtractor()

    def prepare_audio_inputs(self, batch_size: int | None = None) -> list[dict]:
        """The mixin's clips of random samples, each carrying its rate: SLAP never assumes one."""
        return [{"array": clip, "sampling_rate": 16000} for clip in super().prepare_audio_inputs(batch_size)]

    def test_kwargs_reach_their_subprocessor(self):
        """Flat and nested keyword arguments go to the component that takes them: text lengths to the
        tokenizer only, `packing` / `max_duration` to the feature extractor only."""
        processor = self.get_processor()
        clips = [tone(1.0, seed=1), tone(0.5, seed=2)]
        captions = ["a low hum", "three clicks then a beep"]
        flat = processor(text=captions, audio=clips, sampling_rate=16000, max_length=12, padding="max_length",
                         packing=False, max_duration=0.6)
        nested = processor(text=captions, audio=clips, text_kwargs={"max_length": 12, "padding": "max_length"},
                           audio_kwargs={"sampling_rate": 16000, "packing": False, "max_duration": 0.6})
        reference = processor.feature_extractor(clips, sampling_rate=16000, packing=False, max_duration=0.6)
        tokens = processor.tokenizer(captions, max_length=12, padding="max_length", return_tensors="pt")
        for inputs in (flat, nested):
            assert set(inputs) == set(tokens) | {"input_features", "audio_attention_mask"}
            for key, value in {**tokens, **reference}.items():
                assert torch.equal(inputs[key], value), key
        default = processor(text=captions)  # the processor's defaults: pad to the longest caption, torch
        assert torch.equal(default["input_ids"], processor.tokenizer(captions, padding="longest",
                                                                     return_tensors="pt")["input_ids"])

    def test_clips_carrying_a_different_rate_are_refused(self):
        processor = self.get_processor()
        with self.assertRaisesRegex(ValueError, "sampled at 16000 Hz, but sampling_rate=44100"):
            processor(audio=self.prepare_audio_inputs(), sampling_rate=44100)
        with self.assertRaisesRegex(ValueError, "sampling_rate is required"):
            processor(audio=[np.zeros(1600, np.float32)])


# --- Loading in new processes -----------------------------------------------------------------------

CAPTIONS = ["a low hum", "three sharp clicks"]
CLIP_SECONDS = (1.5, 0.4)

# Child script: load each saved folder with `load(folder)` (defined by `{loader}`), run the processor
# and the feature extractor on two clips and save their outputs, by folder.
LOAD_AND_RUN = """
    import sys
    import numpy as np
    import torch
    *folders, clips_path, out = sys.argv[1:]
    clips = list(np.load(clips_path).values())
    {loader}
    results = {{}}
    for folder in folders:
        processor, extractor = load(folder)
        results[folder] = {{
            "inputs": dict(processor(text={captions!r}, audio=clips, sampling_rate=16000)),
            "features": dict(extractor(clips, sampling_rate=16000)),
            "classes": [type(processor).__module__ + "." + type(processor).__name__,
                        type(extractor).__module__ + "." + type(extractor).__name__],
        }}
    results["slap_audio_imported"] = any(name.startswith("slap_audio") for name in sys.modules)
    torch.save(results, out)
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Processor folders saved in this process (Auto classes registered, so `auto_map` and the code
    are written) and in a new one without registration, plus two clips and the expected outputs."""
    root = tmp_path_factory.mktemp("processor")
    register_auto_classes()  # (conftest does too) so that save_pretrained writes auto_map and the code
    processor = SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer())
    processor.save_pretrained(root / "registered")
    run_python("""
        import sys
        sys.path.insert(0, sys.argv[2])
        from conftest import build_test_tokenizer
        from slap_audio.modeling_slap import SlapFeatureExtractor, SlapProcessor
        SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer()).save_pretrained(sys.argv[1])
    """, str(root / "unregistered"), str(Path(__file__).parent), cwd=root)
    clips = [tone(seconds, freq=300.0 * (i + 1), seed=i) for i, seconds in enumerate(CLIP_SECONDS)]
    np.savez(root / "clips.npz", *clips)
    expected = {"inputs": processor(text=CAPTIONS, audio=clips, sampling_rate=16000),
                "features": processor.feature_extractor(clips, sampling_rate=16000)}
    return root, expected


def _assert_same_outputs(got: dict, expected: dict) -> None:
    for part in ("inputs", "features"):
        assert set(got[part]) == set(expected[part])
        for key, value in expected[part].items():
            assert torch.equal(got[part][key], value), (part, key)


def test_installed_package_loads_a_saved_processor_without_registration(saved):
    """`SlapProcessor` / `SlapFeatureExtractor.from_pretrained` in a new process, with no
    `register_auto_classes()` call, of a folder saved with the Auto classes registered and of one
    saved without (before, the first asked for `trust_remote_code` and the second was an
    "Unrecognized feature extractor")."""
    root, expected = saved
    loader = """
    from slap_audio.modeling_slap import SlapFeatureExtractor, SlapProcessor
    def load(folder):
        return SlapProcessor.from_pretrained(folder), SlapFeatureExtractor.from_pretrained(folder)
    """
    folders = [str(root / "registered"), str(root / "unregistered")]
    run_python(LOAD_AND_RUN.format(loader=loader, captions=CAPTIONS), *folders, str(root / "clips.npz"),
              str(root / "installed.pt"), cwd=root)
    got = torch.load(root / "installed.pt")
    for folder in folders:
        assert got[folder]["classes"] == ["slap_audio.modeling_slap.processing_slap.SlapProcessor",
                                          "slap_audio.modeling_slap.feature_extraction_slap.SlapFeatureExtractor"]
        _assert_same_outputs(got[folder], expected)


def test_auto_processor_loads_remote_code_without_the_package(saved):
    """`AutoProcessor` / `AutoFeatureExtractor.from_pretrained(..., trust_remote_code=True)` where
    `slap_audio` cannot be imported: the folder's own code runs and gives the package's outputs."""
    root, expected = saved
    loader = """
    from transformers import AutoFeatureExtractor, AutoProcessor
    def load(folder):
        return (AutoProcessor.from_pretrained(folder, trust_remote_code=True),
                AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True))
    """
    folder = str(root / "registered")
    run_python(LOAD_AND_RUN.format(loader=loader, captions=CAPTIONS), folder, str(root / "clips.npz"),
              str(root / "remote.pt"), cwd=root, hide_package=True)
    got = torch.load(root / "remote.pt")
    assert not got["slap_audio_imported"]
    classes = got[folder]["classes"]
    assert all(name.startswith("transformers_modules.") for name in classes), classes
    assert classes[0].endswith("processing_slap.SlapProcessor"), classes
    _assert_same_outputs(got[folder], expected)


def test_captions_are_truncated_quietly_at_the_tokenizers_max_length(tmp_path):
    """A tokenizer saved with a `max_length` (all-MiniLM-L6-v2's is 128): the processor's captions stop
    there, without transformers' "max_length is ignored" warning on every call."""
    import json
    import warnings

    SlapProcessor(SlapFeatureExtractor(), build_test_tokenizer()).save_pretrained(tmp_path)
    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_length": 6}))
    processor = SlapProcessor.from_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = processor(text=["a dog barking at a siren in the rain", "a hum"])["input_ids"]
    assert ids.shape == (2, 6)
    assert not [w for w in caught if "max_length" in str(w.message)]
