"""Saved SLAP folders load the way users load them: in a new interpreter, with no earlier call.

The test process has the Auto classes registered (conftest), which hides what a user hits, so every
load here runs in a fresh subprocess: without the package (remote code, every Auto class SLAP
supports), with the package but without `register_auto_classes()`, and a LoRA adapter of a
classifier reloaded on its base model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from peft import get_peft_model

from slap_audio.modeling_slap import (
    SlapConfig,
    SlapForAudioClassification,
    SlapForConditionalGeneration,
    SlapForPreTraining,
    SlapModel,
)
from slap_audio.training.lora import slap_lora_config

from fresh_process import run_python

CAPTIONS = ["a low hum", "a rising siren"]  # one per clip
FULL_AUTO_MAP = {
    "AutoConfig": "configuration_slap.SlapConfig",
    "AutoModel": "modeling_slap.SlapModel",
    "AutoModelForAudioClassification": "modeling_slap.SlapForAudioClassification",
    "AutoModelForSpeechSeq2Seq": "modeling_slap.SlapForConditionalGeneration",
    "AutoModelForPreTraining": "modeling_pretraining.SlapForPreTraining",
    "AutoFeatureExtractor": "feature_extraction_slap.SlapFeatureExtractor",
    "AutoProcessor": "processing_slap.SlapProcessor",
}
@pytest.fixture(scope="module")
def saved(tmp_path_factory, processor):
    """A micro `SlapForPreTraining` folder and its `SlapModel` release folder with the processor."""
    root = tmp_path_factory.mktemp("fresh")
    torch.manual_seed(0)
    pretraining = SlapForPreTraining(SlapConfig.from_size("micro"))
    pretraining.save_pretrained(root / "pretraining")
    pretraining.to_model(SlapModel).save_pretrained(root / "slap")
    processor.save_pretrained(root / "slap")
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (24000, 40000)]  # 1.5 s and 2.5 s at 16 kHz
    np.savez(root / "clips.npz", *clips)
    return root, clips


@pytest.mark.parametrize("model_class", [SlapModel, SlapForAudioClassification, SlapForConditionalGeneration, SlapForPreTraining])
def test_every_model_class_saves_every_auto_class(tmp_path, model_class):
    model_class(SlapConfig.from_size("micro")).save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == FULL_AUTO_MAP
    for reference in auto_map.values():
        assert (tmp_path / (reference.split(".")[0] + ".py")).is_file(), reference


def test_every_auto_class_loads_and_runs_without_the_package(saved, processor):
    root, clips = saved
    script = """
        import json
        import sys
        import numpy as np
        import torch
        import transformers
        slap, pretraining, clips_path, out, captions = sys.argv[1:6]
        clips = list(np.load(clips_path).values())
        auto = {"trust_remote_code": True}
        extractor = transformers.AutoFeatureExtractor.from_pretrained(slap, **auto)
        processor = transformers.AutoProcessor.from_pretrained(slap, **auto)
        model = transformers.AutoModel.from_pretrained(slap, **auto).eval()
        classifier = transformers.AutoModelForAudioClassification.from_pretrained(slap, num_labels=3, **auto).eval()
        captioner = transformers.AutoModelForSpeechSeq2Seq.from_pretrained(pretraining, **auto).eval()
        pretrainer = transformers.AutoModelForPreTraining.from_pretrained(pretraining, **auto).eval()
        features = extractor(clips, sampling_rate=16000, return_tensors="pt")
        audio = {"input_features": features["input_features"], "audio_lengths": features["audio_lengths"]}
        inputs = processor(text=json.loads(captions), audio=clips, sampling_rate=16000)
        caption_labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
        with torch.no_grad():
            results = {
                "input_features": features["input_features"],
                "logits_per_audio": model(**inputs).logits_per_audio,
                "classifier_logits": classifier(**audio).logits,
                "classifier_pooled": classifier.audio_model(**audio).pooler_output,
                "captions": captioner.generate(**audio, max_new_tokens=5, do_sample=False),
            }
            torch.manual_seed(0)
            results["pretraining_loss"] = pretrainer(**inputs, caption_labels=caption_labels).loss
        results["modules"] = [type(obj).__module__ for obj in (extractor, processor, model, classifier, captioner, pretrainer)]
        results["slap_audio_imported"] = any(name.startswith("slap_audio") for name in sys.modules)
        torch.save(results, out)
    """
    run_python(script, str(root / "slap"), str(root / "pretraining"), str(root / "clips.npz"), str(root / "out.pt"),
               json.dumps(CAPTIONS), cwd=root, hide_package=True)
    got = torch.load(root / "out.pt")
    assert not got["slap_audio_imported"]
    assert all(module.startswith("transformers_modules.") for module in got["modules"]), got["modules"]

    inputs = processor(text=CAPTIONS, audio=clips, sampling_rate=16000)
    audio = {"input_features": inputs["input_features"], "audio_lengths": inputs["audio_lengths"]}
    model = SlapModel.from_pretrained(root / "slap").eval()
    with torch.no_grad():  # the remote code and the installed package agree
        torch.testing.assert_close(got["input_features"], inputs["input_features"], atol=1e-6, rtol=0)
        torch.testing.assert_close(got["logits_per_audio"], model(**inputs).logits_per_audio, atol=1e-6, rtol=0)
        # the classifier starts from the saved audio tower, with a new 3-way head
        torch.testing.assert_close(got["classifier_pooled"], model.audio_model(**audio).pooler_output, atol=1e-6, rtol=0)
        assert got["classifier_logits"].shape == (2, 3)
        captioner = SlapForConditionalGeneration.from_pretrained(root / "pretraining").eval()
        assert torch.equal(got["captions"], captioner.generate(**audio, max_new_tokens=5, do_sample=False))
        caption_labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
        torch.manual_seed(0)
        loss = SlapForPreTraining.from_pretrained(root / "pretraining").eval()(**inputs, caption_labels=caption_labels).loss
        torch.testing.assert_close(got["pretraining_loss"], loss, atol=1e-6, rtol=0)


def test_installed_package_loads_without_a_prior_call(saved):
    """The concrete classes need nothing; the Auto classes need only `register_auto_classes()`
    (transformers resolves model_type "slap" without remote code only once it is registered)."""
    root, _ = saved
    script = """
        import sys
        import torch
        import transformers
        from slap_audio.modeling_slap import (
            SlapConfig, SlapFeatureExtractor, SlapForAudioClassification, SlapModel, SlapProcessor,
            register_auto_classes,
        )
        slap = sys.argv[1]
        model = SlapModel.from_pretrained(slap)
        extractor = SlapFeatureExtractor.from_pretrained(slap)
        processor = SlapProcessor.from_pretrained(slap)
        assert type(processor.feature_extractor) is SlapFeatureExtractor
        assert processor(text=["a low hum"])["input_ids"].shape[0] == 1
        classifier = SlapForAudioClassification.from_pretrained(slap, num_labels=3)
        assert type(SlapConfig.from_pretrained(slap)) is SlapConfig
        assert classifier.config.num_labels == 3
        register_auto_classes()
        auto_model = transformers.AutoModel.from_pretrained(slap)
        assert type(auto_model) is SlapModel, type(auto_model)
        assert type(transformers.AutoFeatureExtractor.from_pretrained(slap)) is SlapFeatureExtractor
        expected = model.state_dict()
        for name, tensor in auto_model.state_dict().items():
            assert torch.equal(tensor, expected[name]), name
        for name, tensor in classifier.audio_model.state_dict().items():
            assert torch.equal(tensor, expected["audio_model." + name]), name
        assert extractor.to_dict() == transformers.AutoFeatureExtractor.from_pretrained(slap).to_dict()
        print("loaded")
    """
    assert run_python(script, str(root / "slap"), cwd=root).stdout.strip().endswith("loaded")


def test_processor_of_a_model_folder_loads_without_a_prompt_or_a_warning(saved, processor):
    """`SlapProcessor.from_pretrained` of a saved model's folder (config.json with `auto_map`) in a new
    process without `register_auto_classes()`: the tokenizer is given the folder's `SlapConfig`, so
    transformers neither asks whether to run the folder's code nor warns that a `slap` config is used
    for another model type."""
    root, _ = saved
    script = """
        import json
        import sys
        from slap_audio.modeling_slap import SlapProcessor
        processor = SlapProcessor.from_pretrained(sys.argv[1])
        print(json.dumps(processor(text=json.loads(sys.argv[2]))["input_ids"].tolist()))
    """
    result = run_python(script, str(root / "slap"), json.dumps(CAPTIONS), cwd=root)
    output = result.stdout + result.stderr
    assert "Do you wish to run the custom code?" not in output
    assert "You are using a model of type `slap` to instantiate a model of type" not in output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == processor(text=CAPTIONS)["input_ids"].tolist()


def test_lora_adapter_of_a_classifier_reloads_its_head(tmp_path):
    """Fine-tuning a pretrained `SlapModel` folder as a classifier: its head is new, so the adapter
    must carry it — a new process re-initialises the head before loading the adapter."""
    torch.manual_seed(0)
    SlapModel(SlapConfig.from_size("micro")).save_pretrained(tmp_path / "base")
    base = SlapForAudioClassification.from_pretrained(tmp_path / "base", num_labels=3)
    model = get_peft_model(base, slap_lora_config(base))
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([32, 48, 64])
    audio = {"input_features": torch.randn(int(lengths.sum()), 64, generator=generator), "audio_lengths": lengths}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**audio, labels=torch.tensor([0, 1, 2])).loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        trained = model(**audio).logits
    model.save_pretrained(tmp_path / "adapter")
    torch.save(audio, tmp_path / "audio.pt")
    script = """
        import sys
        import torch
        from peft import PeftModel
        from slap_audio.modeling_slap import SlapForAudioClassification
        base, adapter, audio, out = sys.argv[1:5]
        audio = torch.load(audio)
        torch.manual_seed(1)
        classifier = SlapForAudioClassification.from_pretrained(base, num_labels=3).eval()
        with torch.no_grad():
            new_head = classifier(**audio).logits
            adapted = PeftModel.from_pretrained(classifier, adapter).eval()(**audio).logits
        torch.save({"new_head": new_head, "adapted": adapted}, out)
    """
    run_python(script, *(str(tmp_path / name) for name in ("base", "adapter", "audio.pt", "logits.pt")), cwd=tmp_path)
    got = torch.load(tmp_path / "logits.pt")
    assert (got["new_head"] - trained).abs().max() > 1e-4  # a new process re-initialises the head
    torch.testing.assert_close(got["adapted"], trained, atol=1e-6, rtol=0)
