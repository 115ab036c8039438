"""Scripts run in a fresh interpreter, the way users run them, optionally without the package.

The test process has the Auto classes registered (conftest), which hides what a user hits, so user-facing
loading is tested in a new interpreter. `run_python(..., hide_package=True)` runs it as on a machine where
only transformers is installed: `slap_audio` (and the repository's top-level folders) cannot be imported.

    from fresh_process import run_python
    stdout = run_python("import sys; print(sys.argv[1])", "hello", cwd=tmp_path).stdout
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

# The installed package and the repository folders it maps (importable from the repository root).
HIDDEN = ("slap_audio", "modeling_slap", "training")

# Prepended to a child's script: every meta-path finder (the editable install's, the path finder…) is
# wrapped so that it finds nothing under the hidden names, so `importlib.util.find_spec("slap_audio")` is
# None and importing it raises ModuleNotFoundError. Other lookups (and `importlib.metadata`) pass through.
HIDE_PACKAGE = f'''
import importlib.util, sys
class _Hidden:
    def __init__(self, finder):
        self._finder = finder
    def __getattr__(self, name):
        return getattr(self._finder, name)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HIDDEN!r}:
            return None
        return self._finder.find_spec(name, path, target)
sys.meta_path[:] = [_Hidden(finder) for finder in sys.meta_path]
for _name in {HIDDEN!r}:
    if importlib.util.find_spec(_name) is not None:
        raise SystemExit(f"{{_name}} is still importable")
'''


def run_python(
    script: str,
    *args: str,
    cwd: Path,
    hide_package: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `script` (dedented) with `args` in a new interpreter in `cwd`, a folder outside the
    repository, with no input (a prompt reads end-of-file): single-threaded, with its own remote-code cache `cwd/hf_modules`, in `env` (default:
    this process's environment, offline). Asserts that it exits with 0, its stderr in the message;
    the completed process."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1") if env is None else dict(env)
    environment.update(OMP_NUM_THREADS="1", HF_MODULES_CACHE=str(Path(cwd) / "hf_modules"))
    code = (HIDE_PACKAGE if hide_package else "") + textwrap.dedent(script)
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-4000:]}"
    return result
