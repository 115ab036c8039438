"""The shard list and the shuffle buffer of `slap-train --streaming` on the inputs users give them."""

from __future__ import annotations

import numpy as np
import pytest

from slap_audio.training.streaming import _shuffled


@pytest.mark.parametrize("size", [0, 1])
def test_a_shuffle_buffer_of_at_most_one_keeps_the_stream_order(size):
    assert list(_shuffled(iter(range(7)), size, np.random.default_rng(0))) == list(range(7))


def test_a_shuffle_buffer_mixes_every_item_once_and_is_seeded():
    first = list(_shuffled(iter(range(50)), 8, np.random.default_rng(3)))
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert list(_shuffled(iter(range(50)), 8, np.random.default_rng(3))) == first
