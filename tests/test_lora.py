"""PEFT LoRA on SLAP's towers: targets, training, save/load, merge."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel, get_peft_model

from slap_audio.modeling_slap import SlapConfig, SlapForAudioClassification, SlapModel
from slap_audio.training.lora import slap_lora_config

LENGTHS = torch.tensor([32, 48, 16, 64])


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(int(LENGTHS.sum()), 64, generator=generator)
    input_ids = torch.randint(5, 500, (4, 6), generator=generator)
    return {"input_features": features, "audio_lengths": LENGTHS, "input_ids": input_ids}


def _train(model, steps: int, **batch) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_targets_cover_both_towers_and_nothing_else():
    model = SlapModel(SlapConfig.from_size("micro"))
    peft_model = get_peft_model(model, slap_lora_config(model))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in peft_model.named_modules() if name.endswith("lora_A")}
    audio = [n for n in adapted if ".audio_model.layers." in n]
    text = [n for n in adapted if ".text_model.encoder." in n]
    assert len(audio) == 3 * 7  # 3 blocks × (q, k, v, o, gate, up, down)
    assert len(text) == 2 * 6  # 2 BERT layers × (query, key, value, attention out, intermediate, output)
    assert len(adapted) == len(audio) + len(text)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with pytest.raises(ValueError, match="no LoRA targets"):
        slap_lora_config(model, towers=())


def test_contrastive_lora_trains_saves_loads_and_merges(tmp_path):
    torch.manual_seed(0)
    base = SlapModel(SlapConfig.from_size("micro")).eval()
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_peft_model(base, slap_lora_config(base, r=4))
    batch = _batch()
    losses = _train(model, 25, return_loss=True, **batch)
    assert losses[-1] < losses[0] * 0.8
    for key, value in model.get_base_model().state_dict().items():  # frozen base weights untouched
        if "lora_" not in key and "base_layer" not in key:
            assert torch.equal(value, reference[key]), key
    model.eval()
    with torch.no_grad():
        adapted = model(**batch).logits_per_audio
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    torch.manual_seed(0)
    fresh = SlapModel(SlapConfig.from_size("micro")).eval()
    loaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    merged = loaded.merge_and_unload()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits_per_audio, adapted, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(SlapModel(SlapConfig.from_size("micro")).eval()(**batch).logits_per_audio, adapted)
    assert type(merged) is SlapModel and not any("lora_" in n for n, _ in merged.named_parameters())


def test_classification_lora_with_trained_head(tmp_path):
    torch.manual_seed(0)
    config = SlapConfig.from_size("micro", num_labels=4)
    base = SlapForAudioClassification(config)
    model = get_peft_model(base, slap_lora_config(base, towers=("audio",), modules_to_save=["classifier"]))
    batch = _batch()
    labels = torch.tensor([0, 1, 2, 3])
    losses = _train(model, 30, input_features=batch["input_features"], audio_lengths=LENGTHS, labels=labels)
    assert losses[-1] < 0.97 * losses[0] and losses == sorted(losses, reverse=True)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # adapters moved away from their zero init
    model.eval()
    with torch.no_grad():
        logits = model(input_features=batch["input_features"], audio_lengths=LENGTHS).logits
    model.save_pretrained(tmp_path)
    torch.manual_seed(0)
    fresh = SlapForAudioClassification(config)  # the same base weights
    torch.nn.init.normal_(fresh.classifier.weight)  # a different head: the saved one must replace it
    loaded = PeftModel.from_pretrained(fresh, tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_features=batch["input_features"], audio_lengths=LENGTHS).logits, logits)
