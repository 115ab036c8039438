"""Everything a user copies from README.md runs as written, each in a fresh process.

The README is parsed when the tests are collected, so a new block is picked up by itself:

* every fenced ```python block runs in a new interpreter (`python -c`), with at most a small
  preamble that defines what the block uses but does not define (`PYTHON_BLOCKS`), and checks
  appended after it;
* every command of a fenced ```bash block, and every command quoted inline (`` `slap-...` ``,
  `` `python -m ...` ``, `` `./run ...` ``), runs through `bash -c`, in README order within its block;
* a command that cannot run here is listed in `NOT_RUN` with the reason; a fenced block in any
  other language must be listed in `NOT_RUN` too. `test_the_readme_is_covered` fails on a block
  or command that is neither run nor listed, and on table entries the README no longer has.

Each test gets its own copy of a working directory in which the README's paths are real:

| path | what it is here |
| --- | --- |
| `configs/` | a copy of the repository's configs |
| `outputs/demo/run/slap`, `outputs/demo/run/captioner` | the demo's release models, made by the real `slap-train configs/micro.yaml --max_steps 2 --output_dir outputs/demo/run` (a micro stand-in for `./run demo`'s tiny model) |
| `dog.wav` | 2 s of a 440 Hz tone at 44.1 kHz |
| `path/to/audiofolder` | 8 WAV clips (1–3 s) with a `metadata.jsonl` of captions |

Commands run with the virtual environment's `bin/` first on `PATH`, `HF_HUB_OFFLINE=1` and one
thread; `slap-push` talks to the local Hub (tests/hubserver) through `HF_ENDPOINT`, as user `user`
with the token in `HF_TOKEN` (what the README's comment says it reads); `torchrun` gets a free
rendezvous port through `PET_MASTER_PORT` (tests run side by side). Flags appended to keep the
run short are all in `COMMANDS` (later flags override the config and earlier flags).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from huggingface_hub import HfApi

from hubserver import HubServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
HUB_USER, HUB_TOKEN = "user", "hf_readme_user_0123456789"


@dataclass(frozen=True)
class Block:
    """A fenced block (`language` python, bash, ...) or an inline command (`language` "inline")."""

    language: str
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.language}-L{self.line}"


@dataclass(frozen=True)
class Command:
    """How a README command runs here: flags appended to it (and why), what it must leave behind."""

    append: tuple[str, ...] = ()
    why: str = ""
    creates: tuple[str, ...] = ()  # files in the working directory
    hub_files: tuple[str, ...] = ()  # files of the pushed repository (the command's 2nd argument)


@dataclass(frozen=True)
class PythonBlock:
    """What a Python block (found by `marker`, a string it contains) gets around it."""

    preamble: str = ""  # defines what the block uses but does not define
    checks: str = ""  # runs after the block, in the same interpreter


# ----------------------------------------------------------------------------- the tables

NOT_RUN = {
    "./run demo": "sets up .venv, then trains `tiny` for minutes; its stages are the `slap-train`, "
    "`slap-eval` and pipeline commands and blocks run here",
    "./run test": "runs this whole suite, this file included",
    "python -m slap_audio.training.ablation --config configs/ablation.yaml --max-steps 300": "trains three `tiny` "
    "models for 300 steps (an hour on 2 cores); tests/test_ablation.py runs its variants in miniature",
    "slap-data debian outputs/debian": "downloads 618 MB of Debian packages and renders for minutes; "
    "tests/test_debian_*.py build every part from tiny inputs, the CLI included",
    "slap-train configs/real.yaml": "25 minutes of training on the Debian corpus; the same CLI runs here on micro",
    "slap-eval runs/real/slap --dataset outputs/debian --split test --output-dir outputs/real-eval": "needs the "
    "Debian corpus and the trained model; tests/test_zero_shot_tasks.py runs slap-eval on a tiny corpus-shaped folder",
    "python app.py": "serves the app until stopped; tests/test_app_browser.py starts it on a free port and "
    "drives it in headless Chromium",
    "python app.py --model user/slap-tiny --library path/to/audiofolder": "serves the app until stopped (and "
    "needs the Hub); tests/test_app.py and tests/test_app_browser.py run it with --model and --library",
    "slap-export onnx outputs/demo/run/slap outputs/demo/onnx": "a minute of export and ONNX Runtime checks; "
    "tests/test_export_onnx.py runs this CLI in a fresh process on a micro model",
    "slap-eval outputs/demo/run/slap --benchmark esc50 --data-dir path/to/ESC-50-master --output-dir outputs/esc50":
    "needs the ESC-50 download; tests/test_benchmarks.py builds ESC-50, UrbanSound8K, Clotho and AudioCaps "
    "layouts in miniature and runs slap-eval --benchmark on them",
}

COMMANDS = {
    "slap-train configs/tiny.yaml --train_source path/to/audiofolder --output_dir runs/mine": Command(
        append=("--max_steps", "2", "--size", "micro", "--eval_size", "16"),
        why="300 steps of `tiny`, and the config's 200 validation clips are generated up front although "
        "no evaluation step comes within 2 steps",
        creates=("runs/mine/slap/model.safetensors", "runs/mine/captioner/model.safetensors"),
    ),
    "slap-train configs/micro.yaml --max_steps 50": Command(
        append=("--max_steps", "2"), why="50 steps and 5 evaluations take a minute on a shared CPU",
        creates=("runs/micro/slap/model.safetensors",),
    ),
    "torchrun --nproc_per_node 2 -m slap_audio.training.cli configs/micro.yaml --use_cpu true": Command(
        append=("--max_steps", "2"), why="20 steps in two processes take a minute on a shared CPU",
        creates=("runs/micro/slap/model.safetensors",),
    ),
    "slap-eval outputs/demo/run/slap --dataset builtin:test --captioner outputs/demo/run/captioner "
    "--output-dir outputs/demo/eval": Command(
        append=("--num-clips", "16", "--caption-clips", "4"),
        why="the 250 test clips take 30 s, and beam search captions about a clip a second",
        creates=("outputs/demo/eval/results.json", "outputs/demo/eval/similarity_matrix.png"),
    ),
    "slap-push outputs/demo/run/slap user/slap-tiny --metrics outputs/demo/eval/results.json": Command(
        hub_files=("README.md", "config.json", "model.safetensors", "modeling_slap.py", "processor_config.json"),
    ),
    "slap-search index path/to/audiofolder --model outputs/demo/run/slap --out sounds.index": Command(
        creates=("sounds.index/manifest.json",),
    ),
    "slap-train configs/micro.yaml --streaming true --train_source outputs/shards --dataloader_num_workers 2 "
    "--output_dir runs/streamed --max_steps 2 --eval_strategy no": Command(
        creates=("runs/streamed/slap/model.safetensors",),
    ),
    "slap-push outputs/demo/run/slap user/slap-tiny --space user/slap-tiny-demo": Command(
        hub_files=("config.json", "model.safetensors"),
    ),
}

PYTHON_BLOCKS = {
    'classifier("dog.wav"': PythonBlock(),
    "processor(audio=[clip_a, clip_b], sampling_rate=44100)": PythonBlock(
        preamble=(
            "import numpy as np\n"
            "clip_a = (0.3 * np.sin(2 * np.pi * 440 * np.arange(88200) / 44100)).astype(np.float32)  # 2 s mono\n"
            "clip_b = np.random.default_rng(0).normal(0, 0.1, (2, 30000)).astype(np.float32)  # 0.7 s stereo\n"
        ),
        checks=(
            "assert similarity.shape == (2, 2), similarity.shape\n"
            "assert torch.allclose(audio.norm(dim=-1), torch.ones(2), atol=1e-5)\n"
            "assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)\n"
        ),
    ),
    'lora.save_pretrained("outputs/demo/lora")': PythonBlock(
        checks=(
            "import os\n"
            "trainable, total = lora.get_nb_trainable_parameters()\n"
            "assert 0 < trainable < total / 2, (trainable, total)\n"
            "assert os.path.isfile('outputs/demo/lora/adapter_model.safetensors')\n"
        ),
    ),
}

# ----------------------------------------------------------------------------- reading the README

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_PROGRAM = re.compile(r"^(\./run|slap-[a-z]+|python3?|torchrun|accelerate|hf|pip)\s")


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks, and the inline-quoted commands of the prose between them, in order."""
    blocks, prose_start = [], 0
    for fence in [*_FENCE.finditer(text), None]:
        prose_end = fence.start() if fence else len(text)
        for quoted in _INLINE.finditer(text, prose_start, prose_end):
            if _PROGRAM.match(quoted.group(1)):
                blocks.append(Block("inline", text.count("\n", 0, quoted.start()) + 1, quoted.group(1)))
        if fence:
            blocks.append(Block(fence.group(1).strip(), text.count("\n", 0, fence.start()) + 1, fence.group(2)))
            prose_start = fence.end()
    return blocks


def commands(block: Block) -> list[str]:
    """The commands of a bash block (continuations joined, comments dropped), normalised by shlex."""
    lines = block.text.replace("\\\n", " ").splitlines()
    return [shlex.join(words) for words in (shlex.split(line, comments=True) for line in lines) if words]


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.language == "python"]
SHELL = [b for b in BLOCKS if b.language in ("bash", "inline")]


def _python_setup(block: Block) -> PythonBlock:
    found = [setup for marker, setup in PYTHON_BLOCKS.items() if marker in block.text]
    assert len(found) <= 1, f"README line {block.line}: several PYTHON_BLOCKS markers match"
    return found[0] if found else PythonBlock()


# ----------------------------------------------------------------------------- the working directory


def _audio_folder(root: Path) -> None:
    captions = ["a low hum", "a high whistle", "three sharp clicks", "a rising chirp", "a loud siren",
                "quiet rain noise", "a bell then silence", "two short beeps"]  # fmt: skip
    root.mkdir(parents=True)
    with open(root / "metadata.jsonl", "w") as metadata:
        for i, caption in enumerate(captions):
            t = np.arange((1 + i % 3) * 16000) / 16000
            soundfile.write(root / f"clip{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t), 16000)
            metadata.write(json.dumps({"file_name": f"clip{i}.wav", "caption": caption}) + "\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip


def _run(command: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"`{command}` exited with {result.returncode}:\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The working directory every README test starts from (see the module docstring)."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "configs", root / "configs")
    _run("slap-train configs/micro.yaml --max_steps 2 --output_dir outputs/demo/run", root, _env())
    t = np.arange(2 * 44100) / 44100
    soundfile.write(root / "dog.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 44100)
    _audio_folder(root / "path" / "to" / "audiofolder")
    return root


@pytest.fixture
def workdir(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "work", symlinks=True))


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={HUB_TOKEN: HUB_USER}) as server:
        yield server
        assert server.errors == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- the tests


def test_the_readme_is_covered():
    """Every block runs or is listed with a reason; every table entry still matches the README."""
    others = [b for b in BLOCKS if b.language not in ("python", "bash", "inline")]
    assert not [b.id for b in others if b.text.strip() not in NOT_RUN], "list these blocks in NOT_RUN with a reason"
    in_readme = {c for b in SHELL for c in commands(b)} | {b.text.strip() for b in others}
    assert sorted(set(NOT_RUN) - in_readme) == [], "NOT_RUN entries the README no longer has"
    assert sorted(set(COMMANDS) - in_readme) == [], "COMMANDS entries the README no longer has"
    assert not set(COMMANDS) & set(NOT_RUN)
    markers = [m for m in PYTHON_BLOCKS if not any(m in b.text for b in PYTHON)]
    assert markers == [], "PYTHON_BLOCKS markers the README no longer has"
    assert PYTHON and SHELL  # the parser found the README's blocks


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block(block, workdir):
    setup = _python_setup(block)
    script = setup.preamble + block.text + setup.checks
    result = subprocess.run([sys.executable, "-c", script], cwd=workdir, env=_env(), capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, f"README line {block.line} failed in a fresh interpreter:\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_commands(block, workdir, hub):
    to_run = [c for c in commands(block) if c not in NOT_RUN]
    if not to_run:
        pytest.skip("; ".join(f"`{c}` is not run: {NOT_RUN[c]}" for c in commands(block)))
    for command in to_run:
        spec = COMMANDS.get(command, Command())
        env = _env()
        if command.startswith("slap-push"):
            env = hub.env(token=HUB_TOKEN, hf_home=workdir / ".hf_home", base=env)
        if command.startswith("torchrun"):
            env["PET_MASTER_PORT"] = str(_free_port())
        _run(command + "".join(" " + shlex.quote(flag) for flag in spec.append), workdir, env)
        assert [p for p in spec.creates if not (workdir / p).is_file()] == [], command
        if spec.hub_files:
            with hub.client(token=HUB_TOKEN, hf_home=workdir / ".hf_home"):
                files = HfApi().list_repo_files(shlex.split(command)[2])
            assert set(spec.hub_files) <= set(files), files
