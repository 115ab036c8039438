"""Stand-in for transformers' `tests/generation/test_utils.py` (not in the sdist): no generate tests."""


class GenerationTesterMixin:
    """The `generate` tests are not run here (captioning's `generate` has SLAP's own tests)."""
