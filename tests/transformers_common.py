"""transformers' own common test mixins, fetched at test time from the sdist of the installed version.

Every model inside transformers must pass `ModelTesterMixin`, `ConfigTester`,
`SequenceFeatureExtractionTestMixin` and `ProcessorTesterMixin`. Their code is not copied into this
repository: `common_tests()` downloads `transformers==<installed version>` from PyPI (source
distribution, no dependencies) once into `.cache/transformers-tests/<version>/`, unpacks its
`tests/*.py` as the package `transformers_tests`, adds the four sibling modules the sdist leaves out
(ours, in `tests/transformers_standins/`) and returns the package's modules. Where PyPI cannot be
reached the conformance tests skip, saying so: a test module calls `common_tests_or_skip_module()`
at import.

    from transformers_common import common_tests_or_skip_module
    modeling_common = common_tests_or_skip_module().modeling   # transformers_tests.test_modeling_common
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import transformers

CACHE = Path(os.environ.get("SLAP_TEST_CACHE", Path(__file__).resolve().parents[1] / ".cache"))
STANDINS = Path(__file__).resolve().parent / "transformers_standins"
PACKAGE = "transformers_tests"
MODULES = {
    "modeling": "test_modeling_common",
    "configuration": "test_configuration_common",
    "feature_extraction": "test_feature_extraction_common",
    "sequence_feature_extraction": "test_sequence_feature_extraction_common",
    "processing": "test_processing_common",
}


def _download_sdist(version: str, into: Path) -> Path:
    """`pip download` the sdist of `transformers==version` into `into`; the archive's path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-q", "-d", str(into), f"transformers=={version}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    archives = sorted(into.glob("transformers-*.tar.gz"))
    if result.returncode != 0 or not archives:
        pytest.skip(
            f"transformers' common tests need the transformers=={version} sdist from PyPI, which "
            f"could not be fetched here: {result.stderr.strip()[-300:]}"
        )
    return archives[0]


def _unpack_tests(archive: Path, root: Path) -> None:
    """Unpack the archive's top-level `tests/*.py` into `root/transformers_tests/` with our stand-ins."""
    package = root / PACKAGE
    package.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py") and member.isfile():
                (package / parts[2]).write_bytes(tar.extractfile(member).read())
    if not (package / "test_modeling_common.py").exists():
        raise RuntimeError(f"{archive.name} has no tests/test_modeling_common.py")
    (package / "__init__.py").touch()
    for sub in ("exporters", "generation", "utils"):
        shutil.copytree(STANDINS / sub, package / sub)
    # test_processing_common imports this from `<repo>/utils`, put on sys.path as `../utils`
    (root / "utils").mkdir()
    shutil.copy(STANDINS / "fetch_hub_objects_for_ci.py", root / "utils")


def _prepare(version: str) -> Path:
    """The folder holding `transformers_tests/` for this version, fetched and unpacked once."""
    root = CACHE / "transformers-tests" / version
    if (root / PACKAGE / "__init__.py").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        staging = Path(scratch) / "tree"
        _unpack_tests(_download_sdist(version, Path(scratch)), staging)
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(root)  # atomic: a half-unpacked tree is never seen as ready
        except OSError:
            if not (root / PACKAGE / "__init__.py").exists():  # not a concurrent winner: a real error
                raise
    return root


_loaded: SimpleNamespace | None = None


def common_tests() -> SimpleNamespace:
    """transformers' common test modules of the installed version, by short name (see `MODULES`)."""
    global _loaded
    if _loaded is None:
        pytest.importorskip("parameterized", reason="transformers' common tests import parameterized")
        root = _prepare(transformers.__version__)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        _loaded = SimpleNamespace(
            version=transformers.__version__,
            **{name: importlib.import_module(f"{PACKAGE}.{module}") for name, module in MODULES.items()},
        )
    return _loaded


def common_tests_or_skip_module() -> SimpleNamespace:
    """`common_tests()`, or skip the calling test module (at import) with the reason."""
    try:
        return common_tests()
    except pytest.skip.Exception as skipped:
        pytest.skip(str(skipped), allow_module_level=True)
