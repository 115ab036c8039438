"""Deploy SLAP outside PyTorch: ONNX graphs of the audio and text encoders (`slap-export onnx`).

    from slap_audio.export import export_onnx
    manifest = export_onnx("path/to/slap-model", "path/to/onnx")

See `onnx_export.py` for what the folder holds, `onnx_translations.py` for the ONNX lowerings of
the ops torch gets wrong or wasteful, and `cli.py` for the command line.
"""

from .onnx_export import DEFAULT_OPSET, export_onnx, load_slap_model

__all__ = ["DEFAULT_OPSET", "export_onnx", "load_slap_model"]
