"""SlapForPreTraining's objectives: masking, which view each loss sees, the alternatives of SPEC §4."""

import pytest
import torch
import torch.nn.functional as F

from slap_audio.modeling_slap import SlapConfig, SlapForPreTraining, SlapModel
from slap_audio.modeling_slap.losses import (
    contrastive_loss,
    self_distillation_loss,
    sigmoid_contrastive_loss,
)

LENGTHS = torch.tensor([64, 32, 96])  # frames: 16, 8 and 24 patches


def _batch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 500, (3, 9), generator=generator)
    return {
        "input_features": torch.randn(int(LENGTHS.sum()), 64, generator=generator),
        "audio_lengths": LENGTHS, "input_ids": ids, "caption_labels": ids,
    }


def _model(**overrides) -> SlapForPreTraining:
    torch.manual_seed(0)
    return SlapForPreTraining(SlapConfig.from_size("micro", **overrides)).eval()


@pytest.mark.parametrize("mask_type", ["random", "time_block"])
def test_mask_takes_the_exact_ratio_of_each_clip(mask_type):
    model = _model(mask_type=mask_type, mask_ratio=0.5, mask_block_columns=2)
    patches, time_ids, _, token_lengths = model.audio_model.patchify(torch.randn(192, 64), LENGTHS)
    torch.manual_seed(3)
    masked = model.choose_masked(time_ids, token_lengths)
    counts = [int(part.sum()) for part in masked.split(token_lengths.tolist())]
    assert counts == [8, 4, 12]
    if mask_type == "time_block":  # whole time columns, at most one column per clip split
        for part in masked.split(token_lengths.tolist()):
            columns = part.view(-1, model.config.audio_config.freq_patches).sum(1)
            assert int(((columns > 0) & (columns < columns.new_tensor(4))).sum()) <= 1
    torch.manual_seed(4)
    assert not torch.equal(masked, model.choose_masked(time_ids, token_lengths))  # drawn anew each step


def _release_audio_embeds(model: SlapForPreTraining, batch: dict) -> torch.Tensor:
    release = model.to_model(SlapModel)
    return release.get_audio_features(batch["input_features"], batch["audio_lengths"]).pooler_output


def test_contrastive_only_trains_on_unmasked_audio():
    """Without a masked objective nothing is masked: the contrast sees what inference sees."""
    model = _model(self_supervised_weight=0.0, captioning_weight=0.0)
    assert not model.uses_masking()
    batch = _batch()
    out = model(**batch)
    torch.testing.assert_close(out.audio_embeds, _release_audio_embeds(model, batch))
    assert set(k for k in out.keys() if k.endswith("_loss")) == {"contrastive_loss"}


@pytest.mark.parametrize("unmasked_pass", [False, True])
def test_unmasked_student_pass_feeds_the_contrast(unmasked_pass):
    model = _model(unmasked_student_pass=unmasked_pass)
    assert model.uses_masking()
    batch = _batch()
    out = model(**batch)
    reference = _release_audio_embeds(model, batch)
    if unmasked_pass:
        torch.testing.assert_close(out.audio_embeds, reference)
    else:  # one masked pass feeds every objective
        assert (out.audio_embeds - reference).abs().max() > 1e-3
    out.loss.backward()
    assert model.audio_model.mask_token.grad.abs().sum() > 0  # the masked pass still trains


@pytest.mark.parametrize(
    "overrides, terms",
    [
        ({}, {"contrastive_loss", "self_supervised_loss", "captioning_loss"}),
        ({"contrastive_type": "sigmoid"}, {"contrastive_loss", "self_supervised_loss", "captioning_loss"}),
        ({"mask_mode": "drop", "self_supervised_weight": 0.0, "captioning_weight": 0.0, "reconstruction_weight": 1.0},
         {"contrastive_loss", "reconstruction_loss"}),
        ({"byol_weight": 1.0, "contrastive_weight": 0.0, "self_supervised_weight": 0.0, "captioning_weight": 0.0},
         {"byol_loss"}),
        ({"mask_type": "time_block", "unmasked_student_pass": True},
         {"contrastive_loss", "self_supervised_loss", "captioning_loss"}),
    ],
)
def test_each_objective_combination_trains(overrides, terms):
    model = _model(**overrides)
    model.train()
    out = model(**_batch())
    assert set(k for k in out.keys() if k.endswith("_loss")) == terms
    weights = {
        "contrastive_loss": model.config.contrastive_weight, "self_supervised_loss": model.config.self_supervised_weight,
        "captioning_loss": model.config.captioning_weight, "reconstruction_loss": model.config.reconstruction_weight,
        "byol_loss": model.config.byol_weight,
    }
    torch.testing.assert_close(out.loss, sum(weights[name] * out[name] for name in terms))
    out.loss.backward()
    assert model.audio_model.patch_embed.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("teacher_"))


def test_every_weight_zero_is_refused():
    model = _model(contrastive_weight=0.0, self_supervised_weight=0.0, captioning_weight=0.0)
    with pytest.raises(ValueError, match="every objective weight is 0"):
        model(**_batch())


def test_loss_functions_match_their_definitions():
    generator = torch.Generator().manual_seed(0)
    audio = F.normalize(torch.randn(5, 8, generator=generator), dim=-1)
    text = F.normalize(torch.randn(5, 8, generator=generator), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * audio @ text.t()
    labels = torch.arange(5)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    torch.testing.assert_close(contrastive_loss(audio, text, scale), expected)
    bias = torch.tensor(-2.0)
    signs = 2 * torch.eye(5) - 1
    expected = -F.logsigmoid(signs * (logits + bias)).sum() / 5
    torch.testing.assert_close(sigmoid_contrastive_loss(audio, text, scale, bias), expected)
    student, teacher, center = torch.randn(4, 6), torch.randn(4, 6), torch.randn(6)
    target = F.softmax((teacher - center) / 0.04, dim=-1)
    expected = -(target * F.log_softmax(student / 0.1, dim=-1)).sum(-1).mean()
    torch.testing.assert_close(self_distillation_loss(student, teacher, center, 0.1, 0.04), expected)


@pytest.mark.parametrize("intra_weight", [0.0, 0.5])
def test_byol_loss_has_cross_and_intra_modal_terms(intra_weight):
    """Siamese SLAP's BYOL: each modality's predictor regresses the other modality's EMA target
    (cross-modal) and, weighted by `byol_intra_weight`, its own (intra-modal); at the start the
    targets are the student's own projections."""
    model = _model(byol_weight=1.0, byol_intra_weight=intra_weight, contrastive_weight=0.0,
                   self_supervised_weight=0.0, captioning_weight=0.0)
    batch = _batch()
    with torch.no_grad():
        out = model(**batch)
        audio = model.audio_projection(model.audio_model(batch["input_features"], batch["audio_lengths"]).pooler_output)
        text = model.text_projection(model.text_model(batch["input_ids"]).pooler_output)
        predicted_audio, predicted_text = model.audio_predictor(audio), model.text_predictor(text)

    def regression(prediction, target):
        return (2 - 2 * F.cosine_similarity(prediction, target, dim=-1)).mean()

    cross = regression(predicted_audio, text) + regression(predicted_text, audio)
    intra = regression(predicted_audio, audio) + regression(predicted_text, text)
    torch.testing.assert_close(out.byol_loss, (cross + intra_weight * intra) / (2 * (1 + intra_weight)))
