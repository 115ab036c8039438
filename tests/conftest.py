"""Shared fixtures: a micro SLAP, a small WordPiece tokenizer built here (no Hub), test audio."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertTokenizer

from slap_audio.modeling_slap import (
    SlapConfig,
    SlapFeatureExtractor,
    SlapModel,
    SlapProcessor,
    register_auto_classes,
)

WORDS = (
    "a an the this is sound of low high hum whistle click clicks beep beeps siren noise chirp "
    "rising falling quiet loud then while over three two one four rapid slow tone bell buzz rain "
    "wind thump dog cat music speech silence short long"
).split()


def build_test_tokenizer() -> BertTokenizer:
    """A 512-entry BERT WordPiece vocabulary: specials (ids 0–4, as the `micro` decoder expects),
    characters, continuation characters and a few caption words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS
    vocab += [f"[unused{i}]" for i in range(512 - len(vocab))]
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


@pytest.fixture(scope="session", autouse=True)
def _registered():
    register_auto_classes()


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Test models are too small to gain from intra-op threads, and on a busy shared CPU two OpenMP
    threads spin-wait on each other (tests ran up to 10x slower). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer():
    return build_test_tokenizer()


@pytest.fixture(scope="session")
def micro_config() -> SlapConfig:
    return SlapConfig.from_size("micro")


@pytest.fixture(scope="session")
def micro_model(micro_config) -> SlapModel:
    torch.manual_seed(0)
    return SlapModel(micro_config).eval()


@pytest.fixture(scope="session")
def processor(tokenizer) -> SlapProcessor:
    return SlapProcessor(SlapFeatureExtractor(), tokenizer)


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory, micro_model, processor) -> Path:
    """`micro_model` and `processor` saved in one folder (what `slap-train` writes as `slap/`); read only."""
    folder = tmp_path_factory.mktemp("checkpoint") / "slap"
    micro_model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tone(seconds: float, freq: float = 440.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A sine plus a little seeded noise, float32."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.shape)
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


# Stand-in modules for transformers' common tests (see transformers_common.py), not test files.
collect_ignore = ["transformers_standins"]
