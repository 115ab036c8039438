"""The shard list and the shuffle buffer of `slap-train --streaming` on the inputs users give them."""

from __future__ import annotations

import numpy as np
import pytest

from slap_audio.data.shards import list_shards
from slap_audio.training.streaming import _shuffled


def test_a_listed_shard_that_is_missing_is_an_error(tmp_path):
    shards = [tmp_path / "shard-00000.tar", tmp_path / "shard-00001.tar"]
    shards[0].write_bytes(b"")
    assert list_shards([shards[0]]) == [str(shards[0])]
    with pytest.raises(FileNotFoundError, match="shard-00001.tar"):  # not silently one shard fewer
        list_shards(shards)
    (tmp_path / "shard-00001.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="must all be .tar or all .parquet"):
        list_shards([shards[0], tmp_path / "shard-00001.parquet"])


@pytest.mark.parametrize("size", [0, 1])
def test_a_shuffle_buffer_of_at_most_one_keeps_the_stream_order(size):
    assert list(_shuffled(iter(range(7)), size, np.random.default_rng(0))) == list(range(7))


def test_a_shuffle_buffer_mixes_every_item_once_and_is_seeded():
    first = list(_shuffled(iter(range(50)), 8, np.random.default_rng(3)))
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert list(_shuffled(iter(range(50)), 8, np.random.default_rng(3))) == first
