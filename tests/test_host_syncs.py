"""No host sync in the training step's masking, losses and trainer bookkeeping.

A sync on a GPU is a read of device data on the host; on this CPU `HostSyncs` (tests/host_syncs.py)
recognises the operations that would do it and the source line that called them: in
`modeling_pretraining.py`, `losses.py` and `training/trainer.py`, and, given the pack layout the
collator computes on the CPU (`max_audio_length`, `audio_length_groups`), in the audio encoder, the
text tower and the caption decoder too.
"""

from __future__ import annotations

import pytest
import torch
from host_syncs import HostSyncs
from transformers import TrainingArguments

from slap_audio.data.sources import load_audio_text_dataset
from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining
from slap_audio.training.collator import SlapCollator
from slap_audio.training.trainer import SlapTrainer

OBJECTIVE_FILES = ("modeling_slap/modeling_pretraining.py", "modeling_slap/losses.py")
TOWER_FILES = (
    "modeling_slap/modeling_audio.py", "modeling_slap/packed_attention.py", "modeling_slap/attention_backends.py",
    "modeling_slap/modeling_text.py", "modeling_slap/modeling_decoder.py", "modeling_slap/modeling_slap.py",
)
LENGTHS = torch.tensor([32, 16, 48, 80])


def _batch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 500, (len(LENGTHS), 7), generator=generator)
    return {"input_features": torch.randn(int(LENGTHS.sum()), 64, generator=generator), "audio_lengths": LENGTHS,
            "input_ids": ids, "attention_mask": torch.ones_like(ids), "caption_labels": ids}


def test_the_detector_finds_each_kind_of_sync():
    values, mask = torch.arange(6.0), torch.arange(6) % 2 == 0
    with HostSyncs([__file__]) as syncs:
        int(values.sum())
        values[mask]
        torch.unique(values)
        torch.repeat_interleave(values, torch.ones(6, dtype=torch.long))
        values.tolist()
        torch.repeat_interleave(values, torch.ones(6, dtype=torch.long), output_size=6)  # sized: no sync
        torch.nonzero_static(mask, size=3)
    assert len(syncs.found) == 5, syncs.found
    assert all(line.startswith("test_host_syncs.py:") for line in syncs.found)


@pytest.mark.parametrize("overrides", [
    {},  # contrast, masked self-distillation, captioning
    {"mask_type": "time_block", "reconstruction_weight": 1.0, "unmasked_student_pass": True},
    {"contrastive_type": "sigmoid", "byol_weight": 1.0},
])
def test_pretraining_forward_and_backward_read_nothing_on_the_host(overrides):
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro", **overrides)).train()
    with HostSyncs(OBJECTIVE_FILES) as syncs:
        output = model(**_batch())
        output.loss.backward()
    assert syncs.found == []
    assert torch.isfinite(output.loss)
    for name in ("self_supervised_loss", "reconstruction_loss"):  # the masked tokens really took part
        if output.get(name) is not None:
            assert output[name] > 0


def _collated(processor, num_clips: int = 5) -> dict:
    collator = SlapCollator(processor, crop_seconds=4.0, seed=0)
    batch = collator([load_audio_text_dataset("builtin:train", num_clips=num_clips, seed=0)[i] for i in range(num_clips)])
    assert isinstance(batch["max_audio_length"], int) and len(batch["audio_length_groups"]) == 4
    return batch


@pytest.mark.parametrize("overrides", [
    {},  # contrast, masked self-distillation, captioning
    {"mask_type": "time_block", "reconstruction_weight": 1.0, "unmasked_student_pass": True},
    {"contrastive_type": "sigmoid", "byol_weight": 1.0},
])
def test_pretraining_step_on_collator_output_reads_nothing_on_the_host(processor, overrides):
    """Student, teacher and unmasked passes of the encoder, the text tower and the caption decoder:
    with the collator's layout ints no file of the model reads a tensor on the host, in the forward
    or the backward; the loss equals the one of the layout read on the host (same masks)."""
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro", **overrides)).train()
    batch = _collated(processor)
    with HostSyncs((*OBJECTIVE_FILES, *TOWER_FILES)) as syncs:
        torch.manual_seed(1)
        output = model(**batch)
        output.loss.backward()
    assert syncs.found == []
    assert torch.isfinite(output.loss)
    model.eval()  # no update of the self-distillation centre between the two runs
    losses = []
    for inputs in (batch, {k: v for k, v in batch.items() if k not in ("max_audio_length", "audio_length_groups")}):
        torch.manual_seed(1)
        losses.append(model(**inputs).loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)


def test_flap_dropping_reads_the_mask_only_to_shorten_the_pack(processor):
    """`mask_mode="drop"` keeps its data-dependent pack size (the visible tokens) in `_student_tokens`;
    the encoder itself still reads nothing."""
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro", mask_mode="drop")).train()
    batch = _collated(processor)
    with HostSyncs((*OBJECTIVE_FILES, *TOWER_FILES)) as syncs:
        model(**batch).loss.backward()
    assert syncs.found and all(" in _student_tokens: " in line for line in syncs.found), syncs.found


def test_embedding_and_captioning_with_feature_extractor_layout_read_nothing(processor):
    """`SlapModel` (both towers, `get_audio_features`) and `SlapForConditionalGeneration` given the
    feature extractor's `return_max_audio_length=True` output, equal to the host-read layout."""
    from slap_audio.modeling_slap import SlapForConditionalGeneration, SlapModel

    torch.manual_seed(0)
    config = SlapConfig.from_size("micro")
    generator = torch.Generator().manual_seed(0)
    waves = [torch.randn(int(seconds * 16000), generator=generator).numpy() for seconds in (0.4, 2.3, 1.1, 0.2, 3.0)]
    features = processor.feature_extractor(waves, sampling_rate=16000, return_max_audio_length=True)
    text = processor.tokenizer(["a"] * 2 + ["a low hum then clicks"] * 3, padding=True, return_tensors="pt")
    plain = {k: features[k] for k in ("input_features", "audio_lengths")}
    model, captioner = SlapModel(config).eval(), SlapForConditionalGeneration(config).eval()
    with torch.no_grad(), HostSyncs(TOWER_FILES) as syncs:
        logits = model(**text, **features).logits_per_audio
        embeds = model.get_audio_features(**features).pooler_output
        caption_logits = captioner(text["input_ids"], **features).logits
    assert syncs.found == []
    with torch.no_grad():
        torch.testing.assert_close(logits, model(**text, **plain).logits_per_audio, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(embeds, model.get_audio_features(**plain).pooler_output, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(caption_logits, captioner(text["input_ids"], **plain).logits, atol=1e-5, rtol=1e-5)


def test_masked_losses_equal_boolean_indexing():
    """Gathering the masked rows at a host-bounded count gives the losses of `tensor[mask]`."""
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro", reconstruction_weight=1.0)).eval()
    batch = _batch()
    patches, time_ids, _, token_lengths = model.audio_model.patchify(batch["input_features"], LENGTHS)
    torch.manual_seed(1)
    masked = model.choose_masked(time_ids, token_lengths)
    torch.manual_seed(2)
    ours = model(**batch, bool_masked_pos=masked)
    # the same objectives by boolean indexing, from the student's and teacher's passes
    embeddings = model.audio_model.patch_embed(patches)
    replaced = torch.where(masked[:, None], model.audio_model.mask_token, embeddings)
    dense = model.audio_model.encode(replaced, time_ids, _, token_lengths).last_hidden_state
    teacher = model.teacher_audio_model.encode(model.teacher_audio_model.patch_embed(patches), time_ids, _, token_lengths)
    from slap_audio.modeling_slap.losses import reconstruction_loss, self_distillation_loss

    config = model.config
    expected_ssl = self_distillation_loss(
        model.ssl_head(dense[masked]), model.teacher_ssl_head(teacher.last_hidden_state[masked]), model.ssl_center,
        config.student_temperature, config.teacher_temperature,
    )
    expected_reconstruction = reconstruction_loss(model.reconstruction_head(dense[masked]), patches[masked])
    torch.testing.assert_close(ours.self_supervised_loss, expected_ssl)
    torch.testing.assert_close(ours.reconstruction_loss, expected_reconstruction)
    assert model.max_masked(len(masked), len(LENGTHS)) >= int(masked.sum())


def test_trainer_step_reads_nothing_on_the_host(processor, tmp_path):
    """`get_batch_samples` (skip decisions) and `training_step` (loss, logged sums, tokens) of
    one optimizer step with an empty micro-batch and a real one."""
    torch.manual_seed(0)
    model = SlapForPreTraining(SlapConfig.from_size("micro"))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", remove_unused_columns=False,
                             gradient_accumulation_steps=2)
    trainer = SlapTrainer(model=model, args=args)
    trainer.current_gradient_accumulation_steps = 2  # what `train()` sets before its loop
    collator = SlapCollator(processor, seed=0, return_metadata=True)
    dataset = load_audio_text_dataset("builtin:train", num_clips=3, seed=0)
    micro_batches = [collator([None]), collator([dataset[i] for i in range(3)])]
    with HostSyncs((*OBJECTIVE_FILES, "training/trainer.py")) as syncs:
        batches, _ = trainer.get_batch_samples(iter(micro_batches), 2, trainer.args.device)
        losses = [trainer.training_step(trainer.model, batch) for batch in batches]
    assert syncs.found == []
    assert float(losses[0]) == 0.0 and float(losses[1]) > 0  # the empty one skipped, first
    assert int(trainer._tokens) == int(micro_batches[1]["audio_lengths"].sum()) // 16 * 4  # frames → tokens
