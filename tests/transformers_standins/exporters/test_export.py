"""Stand-in for transformers' `tests/exporters/test_export.py` (not in the sdist): no export tests."""


class ExportTesterMixin:
    """The `torch.export` tests are not run here (ONNX export is tested by SLAP's own suite)."""
