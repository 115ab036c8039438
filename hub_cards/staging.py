"""The folder a push uploads: built in a temporary directory, checked before anything is sent.

A staged model repository holds exactly: `config.json` (with `auto_map`), the model code (the
`*.py` files that an `auto_map` names, with the sibling modules they import relatively — never
another `*.py` lying in the folder), weights as `*.safetensors` (never pickles), the processor
files, `README.md` and `plots/*.png`. Symbolic links are never followed. A staged adapter holds `adapter_config.json`,
`adapter_model.safetensors`, `README.md` and `plots/*.png`. A staged Space (the demo app next to a
pushed model) holds `app.py` (the `slap_audio.space.app` module), `requirements.txt` and a Space
card `README.md` (`sdk: gradio`, `models: [the model]`). `is_ours` tells these names apart from
anything else a repository may hold; the push refuses to overwrite repositories with other files.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import logging
import math
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import SpaceCard, SpaceCardData
from transformers.dynamic_module_utils import get_relative_imports

from .card import ADAPTER_CARD_KEYS, MODEL_CARD_KEYS, CardValidationError, validate_card

__all__ = [
    "PushError",
    "check_staged",
    "count_parameters",
    "is_ours",
    "model_code_files",
    "stage_adapter",
    "stage_model",
    "stage_plots",
    "stage_space",
]

logger = logging.getLogger(__name__)

Kind = Literal["model", "adapter", "space"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL_FILES = (
    "config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json", "*.py",
    "processor_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
    "tokenizer.model", "spiece.model", "sentencepiece*.model", "chat_template.*",
)  # fmt: skip
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
SPACE_FILES = ("app.py", "requirements.txt")
SPACE_CARD_KEYS = ("title", "sdk", "app_file")
CARD_KEYS = {"model": MODEL_CARD_KEYS, "adapter": ADAPTER_CARD_KEYS, "space": SPACE_CARD_KEYS}
CARD_FILES = ("README.md", "plots/*.png", ".gitattributes")
AUTO_MAP_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # markdown link / image targets


class PushError(RuntimeError):
    """A push refused or failed before publishing anything; the message says what to do."""


def is_ours(path_in_repo: str, kind: Kind) -> bool:
    """Whether a repository file is one a SLAP push of `kind` writes (see the module docstring)."""
    patterns = {"model": MODEL_FILES, "adapter": ADAPTER_FILES, "space": SPACE_FILES}[kind] + CARD_FILES
    if "/" in path_in_repo and not path_in_repo.startswith("plots/"):
        return False  # model files live at the root
    return any(fnmatch.fnmatchcase(path_in_repo, p) for p in patterns)


def stage_model(source: Any, stage: Path, processor: Any = None) -> dict[str, Any]:
    """Write a model's files into `stage`; return its config as a dict.

    `source` is a `PreTrainedModel` (saved with the SLAP Auto classes registered, so `config.json`
    gets `auto_map` and the code is copied) or a `save_pretrained` folder, from which only the
    repository files are copied: optimizer states, trainer state, pickled weights, checkpoints,
    symbolic links and `*.py` files that are not the model's code (`model_code_files`) are left
    out. `processor` (a `SlapProcessor`) is saved next to the weights.
    """
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not (folder / "config.json").is_file():
            raise PushError(f"{folder} has no config.json: pass a folder written by save_pretrained")
        code = model_code_files(folder)
        left_out = []
        for path in sorted(folder.iterdir()):
            if path.is_symlink():
                left_out.append(f"{path.name} (a symbolic link)")
            elif (path.is_file() and path.name != "README.md" and is_ours(path.name, "model")
                  and (path.suffix != ".py" or path.name in code)):  # fmt: skip
                shutil.copy2(path, stage / path.name)
            else:
                left_out.append(path.name + ("/" if path.is_dir() else ""))
        if left_out:
            logger.info("Not uploaded from %s: %s", folder, ", ".join(left_out))
    else:
        from slap_audio.modeling_slap import register_auto_classes

        register_auto_classes()  # `save_pretrained` writes auto_map and copies the model code
        source.save_pretrained(stage)
    if processor is not None:
        processor.save_pretrained(stage)
    return json.loads((stage / "config.json").read_text(encoding="utf-8"))


def stage_adapter(source: Any, stage: Path, base_model: str | None) -> tuple[dict[str, Any], str]:
    """Write a PEFT adapter (`PeftModel` or its saved folder) into `stage`.

    `adapter_config.json` gets `base_model_name_or_path = base_model` (default: the value already
    there, when it is a Hub repo id rather than a local path). Returns (adapter config, base model).
    """
    if isinstance(source, (str, Path)):
        for name in ADAPTER_FILES:
            path = Path(source) / name
            if path.is_file() and not path.is_symlink():
                shutil.copy2(path, stage / name)
    else:
        source.save_pretrained(stage)  # safetensors by default
        (stage / "README.md").unlink(missing_ok=True)  # PEFT's generic card; ours replaces it
    config_path = stage / "adapter_config.json"
    if not config_path.is_file():
        raise PushError(f"no adapter_config.json in {source}: pass a PeftModel or its saved folder")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    recorded = config.get("base_model_name_or_path")
    if base_model is None and isinstance(recorded, str) and not Path(recorded).exists():
        base_model = recorded
    if not base_model or Path(base_model).exists():
        raise PushError(
            "the adapter's base model is not a Hub repo id: pass base_model='namespace/name' "
            "(--base-model), the repository of the model the adapter was trained on"
        )
    config["base_model_name_or_path"] = base_model
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return config, base_model


def stage_plots(plots: Iterable[str | Path], stage: Path) -> list[str]:
    """Copy PNG plots to `stage/plots/`; return their paths relative to the repository root."""
    names: list[str] = []
    for plot in plots:
        path = Path(plot)
        if not path.is_file():
            raise PushError(f"plot {path} does not exist")
        with open(path, "rb") as f:
            if f.read(len(PNG_MAGIC)) != PNG_MAGIC:
                raise PushError(f"plot {path} is not a PNG file (only PNG images are embedded in the card)")
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "plot"
        name, i = f"plots/{stem}.png", 1
        while name in names:
            i += 1
            name = f"plots/{stem}_{i}.png"
        (stage / "plots").mkdir(exist_ok=True)
        shutil.copy2(path, stage / name)
        names.append(name)
    return names


def space_requirement() -> str:
    """The pip requirement of this package (with the app's extras) at the installed version."""
    return f"slap-audio[app,eval]=={importlib.metadata.version('slap-audio')}"


def stage_space(stage: Path, model_id: str, *, title: str | None = None, requirement: str | None = None,
                license: str = "apache-2.0") -> SpaceCard:
    """Write a Gradio Space demoing the Hub model `model_id` into `stage`; return its card.

    `app.py` is the `slap_audio.space.app` module (it reads the card's `models` to find the model),
    `requirements.txt` installs `requirement` (default `space_requirement()`: slap-audio at this
    version, which must then be installable where the Space builds; pass e.g. a `git+https://`
    URL otherwise), and `README.md` is the Space card (`sdk: gradio` at the installed version).
    """
    app = importlib.util.find_spec("slap_audio.space.app")  # its file, without importing gradio & co.
    if app is None or not app.origin:
        raise PushError("slap_audio.space.app is not installed: reinstall slap-audio to publish its Space app")
    shutil.copyfile(app.origin, stage / "app.py")
    (stage / "requirements.txt").write_text((requirement or space_requirement()) + "\n", encoding="utf-8")
    try:
        sdk_version = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        sdk_version = None  # the Hub then builds with its default Gradio
    data = SpaceCardData(
        title=title or f"{model_id.split('/')[-1]} demo", emoji="🔊", colorFrom="indigo", colorTo="green",
        sdk="gradio", sdk_version=sdk_version, app_file="app.py", models=[model_id], license=license,
        tags=["slap", "audio", "zero-shot-audio-classification"],
        short_description="Classify, search and caption sounds with SLAP",
    )  # fmt: skip
    card = SpaceCard(f"---\n{data.to_yaml()}\n---\n\n# {data.title}\n\nThe demo app of the SLAP model "
                     f"[{model_id}](/{model_id}): zero-shot classification of any sound by free-text labels, "
                     "text-to-audio search over an example library, and captioning when the model has a "
                     "caption decoder. Run it locally with `python app.py --model " + model_id + "`.\n")
    (stage / "README.md").write_text(str(card), encoding="utf-8")
    return card


def count_parameters(stage: Path) -> int:
    """Number of tensor elements in the staged `*.safetensors` files, read from their headers.

    (safetensors layout: an 8-byte little-endian header size, then a JSON header of shapes.)
    """
    total = 0
    for path in stage.glob("*.safetensors"):
        with open(path, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        for name, entry in header.items():
            if name != "__metadata__":
                total += math.prod(entry["shape"])
    return total


def _auto_map_modules(data: Any) -> set[str]:
    """Module names referenced by every `auto_map` inside a JSON value (`"module.Class"` entries)."""
    modules: set[str] = set()
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == "auto_map" and isinstance(value, Mapping):
                refs = [r for v in value.values() for r in (v if isinstance(v, list) else [v])]
                modules |= {r.split("--")[-1].rsplit(".", 1)[0] for r in refs if isinstance(r, str)}
            else:
                modules |= _auto_map_modules(value)
    return modules


def model_code_files(folder: Path) -> set[str]:
    """The model code of a `save_pretrained` folder: the `*.py` files named by the `auto_map` of its
    config / processor / tokenizer files, plus the modules these import relatively (transitively).

    Names are returned whether or not the file exists (`check_staged` reports missing ones);
    symbolic links are not read.
    """
    modules: set[str] = set()
    for name in AUTO_MAP_FILES:
        try:
            modules |= _auto_map_modules(json.loads((folder / name).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # absent or broken: check_staged reports it
    pending, code = [f"{m}.py" for m in modules], set()
    while pending:
        name = pending.pop()
        if name in code:
            continue
        code.add(name)
        path = folder / name
        if path.is_file() and not path.is_symlink():
            pending += [f"{m}.py" for m in get_relative_imports(path)]
    return code


def _json(stage: Path, name: str, problems: list[str]) -> Any:
    try:
        return json.loads((stage / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        problems.append(f"{name} is missing or not JSON ({e.__class__.__name__})")
        return None


def _model_problems(stage: Path) -> list[str]:
    problems: list[str] = []
    config = _json(stage, "config.json", problems)
    if isinstance(config, dict):
        auto_map = config.get("auto_map") or {}
        if not {"AutoConfig", "AutoModel"} <= set(auto_map):
            problems.append(
                "config.json has no auto_map for AutoConfig/AutoModel: call "
                "slap_audio.modeling_slap.register_auto_classes() before save_pretrained, or pass the model"
            )
    for name in AUTO_MAP_FILES[1:]:
        if (stage / name).is_file():
            _json(stage, name, problems)
    code = model_code_files(stage)
    problems += [f"{name} is needed by auto_map but missing: the model code must ship with the weights"
                 for name in sorted(code) if not (stage / name).is_file()]  # fmt: skip
    problems += [f"{path.name} is not model code: no auto_map names it and no model module imports it"
                 for path in sorted(stage.glob("*.py")) if path.name not in code]  # fmt: skip
    if not list(stage.glob("*.safetensors")):
        problems.append("no *.safetensors weights: save with save_pretrained (safetensors is the default)")
    index = stage / "model.safetensors.index.json"
    if index.is_file():
        shards = set((_json(stage, index.name, problems) or {}).get("weight_map", {}).values())
        problems += [f"weight shard {s} listed in {index.name} is missing" for s in sorted(shards)
                     if not (stage / s).is_file()]  # fmt: skip
    if not any((stage / n).is_file() for n in ("processor_config.json", "preprocessor_config.json")):
        problems.append("no processor files (processor_config.json): pass processor=SlapProcessor(...)")
    return problems


def _adapter_problems(stage: Path) -> list[str]:
    problems: list[str] = []
    config = _json(stage, "adapter_config.json", problems)
    if isinstance(config, dict) and not config.get("base_model_name_or_path"):
        problems.append("adapter_config.json has no base_model_name_or_path")
    if not (stage / "adapter_model.safetensors").is_file():
        problems.append("no adapter_model.safetensors: save the adapter with safetensors (PEFT's default)")
    return problems


def _space_problems(stage: Path) -> list[str]:
    problems = [f"no {name}: the Space cannot start without it" for name in SPACE_FILES
                if not (stage / name).is_file()]  # fmt: skip
    if (stage / "app.py").is_file():
        try:
            compile((stage / "app.py").read_text(encoding="utf-8"), "app.py", "exec")
        except SyntaxError as e:
            problems.append(f"app.py does not compile: {e}")
    return problems


def check_staged(stage: Path, kind: Kind) -> None:
    """Refuse a staged folder that would publish a broken or unsafe repository.

    Checks: the files of `kind` are there (see `_model_problems` / `_adapter_problems` /
    `_space_problems`), no `*.py` but the model code (a Space: only `app.py`), no symbolic link,
    nothing pickled, nothing that `is_ours` does not know, a README.md that validates locally,
    and every relative link of the card points to a staged file. Raises `PushError` listing all problems.
    """
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    problems = {"model": _model_problems, "adapter": _adapter_problems, "space": _space_problems}[kind](stage)
    problems += [f"{p.relative_to(stage).as_posix()} is a symbolic link; only regular files are uploaded"
                 for p in stage.rglob("*") if p.is_symlink()]  # fmt: skip
    problems += [f"{f} is a pickle-based file; weights are published as safetensors only"
                 for f in files if f.endswith(PICKLE_SUFFIXES)]  # fmt: skip
    problems += [f"{f} is not a file a SLAP {kind} repository holds" for f in files
                 if not is_ours(f, kind) and not f.endswith(PICKLE_SUFFIXES)]  # fmt: skip
    readme = stage / "README.md"
    if not readme.is_file():
        problems.append("no README.md model card")
    else:
        text = readme.read_text(encoding="utf-8")
        try:
            validate_card(text, required=CARD_KEYS[kind])
        except CardValidationError as e:
            problems.append(str(e))
        for target in _LINK.findall(text):
            if not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target) and target.split("#")[0] not in files:
                problems.append(f"README.md links to {target}, which is not uploaded")
    if problems:
        raise PushError("not pushing: the staged repository has problems:\n- " + "\n- ".join(problems))
