"""Find host syncs on the CPU: the operations that would stall an accelerator by reading device data
on the host (`.item()`, `int(t)`, `.tolist()`, boolean indexing, `torch.unique`, `bincount`,
`repeat_interleave` without `output_size`…), recorded with the source line that called them.

On a GPU `torch.cuda.set_sync_debug_mode` does this; on the CPU every tensor is host memory, so
the operations themselves are recognised (a `TorchDispatchMode` sees every aten op, a patch sees
`tolist`/`numpy`) and attributed to the innermost calling frame outside torch.

    with HostSyncs(("modeling_pretraining.py", "losses.py")) as syncs:
        model(**batch).loss.backward()
    assert syncs.found == []
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# ops whose result is a host value or whose output size depends on the data
READS_DATA = {
    aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default,
    aten.nonzero.default, aten.masked_select.default, aten.bincount.default,
    aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
}
BOOL_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
TORCH_DIR = torch.__file__.rsplit("/", 1)[0]


def _reads_data(func, args, kwargs) -> bool:
    if func in READS_DATA:
        return True
    if func is aten.repeat_interleave.Tensor:  # the output size is the sum of the repeats
        return kwargs.get("output_size") is None
    if func in BOOL_INDEXING:
        indices = args[1]
        return any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in indices)
    return False


class HostSyncs(TorchDispatchMode):
    """Records `(file:line in function, op)` for each host sync called from a frame of `files`
    (path suffixes); `allowed` names functions whose reads are deliberate host-side exchanges."""

    def __init__(self, files: Iterable[str], allowed: Iterable[str] = ()):
        super().__init__()
        self.files, self.allowed = tuple(files), set(allowed)
        self.found: list[str] = []
        self._patched: dict[str, object] = {}

    def _record(self, what: str) -> None:
        for frame in reversed(traceback.extract_stack()[:-2]):  # innermost first
            if frame.filename.startswith(TORCH_DIR) or frame.filename == __file__:
                continue
            if frame.filename.endswith(self.files) and frame.name not in self.allowed:
                self.found.append(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}: {what}")
            return

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _reads_data(func, args, kwargs):
            self._record(str(func))
        return func(*args, **kwargs)

    def __enter__(self):
        for name in ("tolist", "numpy"):  # read the data without an aten op
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def reading(tensor, *args, _original=original, _name=name, **kwargs):
                self._record(f"Tensor.{_name}")
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, reading)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._patched.items():
            setattr(torch.Tensor, name, original)
        return super().__exit__(*exc)
