"""Publishing SLAP to the Hugging Face Hub: model cards rendered from eval results, and the push flow.

- `metrics.py`: `read_metrics` reads the eval suite's results JSON (tolerantly) into an `EvalReport`.
- `card.py`: `render_model_card` / `render_adapter_card` (metadata, `model-index`, body from
  `templates/`), `validate_card` (local checks, optionally the Hub's `/api/validate-yaml`).
- `staging.py`: the files a push uploads, and the checks they must pass.
- `push.py`: `push_model`, `push_adapter` and the `slap-push` command line.
"""

from .card import CardValidationError, render_adapter_card, render_model_card, validate_card
from .metrics import EvalReport, read_metrics
from .push import main, push_adapter, push_model, resolve_token
from .staging import PushError

__all__ = [
    "CardValidationError",
    "EvalReport",
    "PushError",
    "main",
    "push_adapter",
    "push_model",
    "read_metrics",
    "render_adapter_card",
    "render_model_card",
    "resolve_token",
    "validate_card",
]
