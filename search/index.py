"""Text→audio and audio→audio search over a sound library with a SLAP model.

    from slap_audio.search import SearchIndex
    index = SearchIndex.build("sounds/", "runs/tiny/slap", "sounds.index")   # embed the folder
    for hit in index.query_text("a dog barking", k=5):
        print(f"{hit.score:.3f}  {hit.path}")
    index.query_audio("clip.wav", k=5)                                        # query by example
    SearchIndex.load("sounds.index").query_text("rain")                       # later, in a new process

An index is a folder: `embeddings-<hash>.npy` (`(num_files, projection_dim)` float32,
L2-normalised, row i = `manifest["files"][i]`) and `manifest.json` (the library root, every embedded file with
its size, modification time, duration, rate and channels, every skipped file with the reason,
the model's name and weight fingerprint, and the last build's counts). Searching is an exact
inner-product (cosine) search: a FAISS `IndexFlatIP` when `faiss` is importable, else a numpy
matrix product; both return the same ranking. The FAISS index is built from the `.npy`
at load (a flat index is that matrix), so the embeddings are stored once.

Building again into the same folder embeds only new or changed files (path, size and
modification time) and drops deleted ones; a build with another model raises `ModelMismatch`
unless `rebuild=True`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, ProcessorMixin

from slap_audio.data.debian.audio_io import UndecodableAudio
from slap_audio.eval.cli import load_model
from slap_audio.eval.embed import DEFAULT_BATCH_SECONDS, embed_audio, embed_texts
from slap_audio.search.library import LibraryFile, read_audio, scan_library

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EMBEDDINGS_STEM = "embeddings"  # embeddings-<sha256 prefix>.npy, named by the manifest
BACKENDS = ("auto", "faiss", "numpy")


class ModelMismatch(ValueError):
    """An index is being updated or queried with another model than the one that built it."""


@dataclass
class SearchHit:
    """One search result: the file, its cosine similarity to the query, and what the index knows
    about it (`path` relative to the library root, `duration` in seconds, `sampling_rate`,
    `channels`, `size` in bytes)."""

    path: str  # absolute path of the file
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


def model_fingerprint(model: PreTrainedModel) -> str:
    """SHA-256 of the model's weights (names, dtypes, shapes, values): the identity an index
    records, so that embeddings of two models are never mixed."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _model_name(name: str) -> str:
    """A local checkpoint folder as an absolute path (the index may be queried from elsewhere)."""
    return str(Path(name).resolve()) if name and Path(name).is_dir() else name


class SearchIndex:
    """Embeddings of a sound library and the model that computed them, searchable by text or audio.

    Create with `SearchIndex.build(folder, model, out)` (also updates an existing index) or
    `SearchIndex.load(out)`; query with `query_text`, `query_audio` or `search` (an embedding).
    `model` is a checkpoint name (folder or Hub id; loaded with its processor) or a loaded
    `SlapModel` with `processor=` its `SlapProcessor`; a loaded index without a model loads the
    one its manifest names at the first query.
    """

    def __init__(self, path: str | os.PathLike, manifest: dict, embeddings: np.ndarray,
                 model: PreTrainedModel | None = None, processor: ProcessorMixin | None = None,
                 backend: str = "auto", trust_remote_code: bool = False, device: str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if len(embeddings) != len(manifest["files"]):
            raise ValueError(f"{path}: {len(embeddings)} embeddings for {len(manifest['files'])} files "
                             "(an interrupted build?); build the index again")
        self.path = Path(path)
        self.manifest = manifest
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)  # (num_files, dim)
        self.model, self.processor = model, processor
        self.trust_remote_code, self.device = trust_remote_code, device
        self.backend = _resolve_backend(backend)
        self._faiss_index = None
        if self.backend == "faiss" and len(self.embeddings):
            import faiss

            self._faiss_index = faiss.IndexFlatIP(self.embeddings.shape[1])
            self._faiss_index.add(self.embeddings)

    # -----------------------------------------------------------------------------------------
    # building and loading

    @classmethod
    def build(cls, folder: str | os.PathLike, model: str | PreTrainedModel, out: str | os.PathLike, *,
              processor: ProcessorMixin | None = None, rebuild: bool = False,
              batch_seconds: float = DEFAULT_BATCH_SECONDS, trust_remote_code: bool = False,
              device: str | None = None, backend: str = "auto", progress: bool = False) -> SearchIndex:
        """Embed every audio file under `folder` into the index folder `out` and return the index.

        If `out` already holds an index of the same folder, only new or changed files are
        embedded and deleted ones dropped. Files that cannot be decoded are skipped and listed in
        the manifest (`skipped`, with the reason); `manifest["stats"]` counts what this build did.
        Clips are packed whole into forward passes of at most `batch_seconds` audio seconds
        (a longer file alone).

        Raises:
            ModelMismatch: `out` was built with other weights (pass `rebuild=True` to re-embed all).
            ValueError: `out` indexes another folder.
            NotADirectoryError: `folder` is not a folder.
        """
        model, processor = _loaded(model, processor, trust_remote_code, device)
        start = time.monotonic()  # the build's `seconds`: scan, decode, embed, write (not the model load)
        library = scan_library(folder)
        root = str(Path(folder).resolve())
        identity = {"name": _model_name(model.name_or_path), "fingerprint": model_fingerprint(model)}
        previous = _previous_build(out, root, identity, rebuild)

        kept, skipped, to_embed = {}, [], []
        for file in library:
            known = previous.get(file.path)
            if known is None or (known["size"], known["mtime_ns"]) != (file.size, file.mtime_ns):
                to_embed.append(file)
            elif "reason" in known:
                skipped.append(known)
            else:
                kept[file.path] = known
        old_embeddings = _read(Path(out))[1] if kept else None
        new_entries, new_embeddings = {}, {}
        audio_seconds = 0.0
        with _eval_mode(model):
            for batch, waveforms, rates in _decoded_batches(root, to_embed, batch_seconds, skipped, progress):
                vectors = embed_audio(model, processor.feature_extractor, waveforms, rates, batch_seconds)
                for entry, vector in zip(batch, vectors.numpy(), strict=True):
                    new_entries[entry["path"]], new_embeddings[entry["path"]] = entry, vector
                    audio_seconds += entry["duration"]

        files, rows = [], []
        for file in library:  # the library's order, so an update equals a full build
            if file.path in kept:
                entry = {key: value for key, value in kept[file.path].items() if key != "row"}
                rows.append(old_embeddings[kept[file.path]["row"]])
            elif file.path in new_entries:
                entry = new_entries[file.path]
                rows.append(new_embeddings[file.path])
            else:
                continue
            files.append(entry)
        dim = model.config.projection_dim
        embeddings = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
        manifest = {
            "format": FORMAT_VERSION,
            "root": root,
            "model": identity,
            "files": files,
            "skipped": sorted(skipped, key=lambda item: item["path"]),
            "stats": {
                "files": len(files),
                "embedded": len(new_entries),
                "reused": len(kept),
                "removed": len(set(previous) - {file.path for file in library}),
                "skipped": len(skipped),
                "audio_seconds": round(audio_seconds, 3),
                "seconds": round(time.monotonic() - start, 3),
            },
        }
        _write(Path(out), manifest, embeddings)
        return cls(out, manifest, embeddings, model, processor, backend=backend,
                   trust_remote_code=trust_remote_code, device=device)

    @classmethod
    def load(cls, path: str | os.PathLike, model: str | PreTrainedModel | None = None, *,
             processor: ProcessorMixin | None = None, trust_remote_code: bool = False,
             device: str | None = None, backend: str = "auto") -> SearchIndex:
        """Open the index folder `path`. With `model` (a name or a loaded model + `processor`),
        its weights must be those the index was built with (else `ModelMismatch`); without, the
        manifest's model is loaded at the first query.

        Raises:
            FileNotFoundError: `path` holds no index.
            ModelMismatch: `model` is not the index's model.
        """
        manifest, embeddings = _read(Path(path))
        if model is not None:
            model, processor = _loaded(model, processor, trust_remote_code, device)
            _check_model(manifest, model_fingerprint(model), path)
        return cls(path, manifest, embeddings, model, processor, backend=backend,
                   trust_remote_code=trust_remote_code, device=device)

    # -----------------------------------------------------------------------------------------
    # querying

    def query_text(self, text: str, k: int = 10) -> list[SearchHit]:
        """The `k` files most similar to a description ("a dog barking"), best first."""
        model, processor = self._model()
        with _eval_mode(model):
            return self.search(embed_texts(model, processor.tokenizer, [text])[0], k)

    def query_audio(self, audio: str | os.PathLike | np.ndarray, k: int = 10,
                    sampling_rate: int | None = None) -> list[SearchHit]:
        """The `k` files most similar to a clip, best first: a file path (decoded like the
        library's files), or samples `(samples,)` / `(samples, channels)` with `sampling_rate`."""
        if isinstance(audio, (str, os.PathLike)):
            audio, sampling_rate, _ = read_audio(audio)
        elif sampling_rate is None:
            raise ValueError("query_audio: pass the sampling_rate of the samples (or a file path)")
        model, processor = self._model()
        with _eval_mode(model):
            vectors = embed_audio(model, processor.feature_extractor, [np.asarray(audio)], [int(sampling_rate)])
        return self.search(vectors[0], k)

    def search(self, embedding: np.ndarray | torch.Tensor, k: int = 10) -> list[SearchHit]:
        """The `k` files whose embeddings have the highest inner product with `embedding`
        (`(projection_dim,)`, L2-normalised, so the score is the cosine similarity)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = np.asarray(embedding, dtype=np.float32).reshape(1, -1)  # (1, dim)
        if query.shape[1] != self.embeddings.shape[1]:
            raise ValueError(f"a query of dimension {query.shape[1]} for an index of dimension "
                             f"{self.embeddings.shape[1]}")
        k = min(k, len(self))
        if k == 0:
            return []
        if self._faiss_index is not None:
            scores, rows = (values[0] for values in self._faiss_index.search(query, k))
        else:
            all_scores = self.embeddings @ query[0]  # (num_files,)
            rows = np.argsort(-all_scores, kind="stable")[:k]
            scores = all_scores[rows]
        return [self._hit(int(row), float(score)) for row, score in zip(rows, scores, strict=True)]

    def _hit(self, row: int, score: float) -> SearchHit:
        entry = self.files[row]
        metadata = {key: entry[key] for key in ("path", "duration", "sampling_rate", "channels", "size")}
        return SearchHit(str(self.root / entry["path"]), score, metadata)

    def _model(self) -> tuple[PreTrainedModel, ProcessorMixin]:
        """The index's model, loaded from the manifest's name at the first query if none was given."""
        if self.model is None:
            name = self.manifest["model"]["name"]
            if not name:
                raise ModelMismatch(f"{self.path} was built with an unsaved model; pass model= to load")
            self.model, self.processor = _loaded(name, None, self.trust_remote_code, self.device)
            _check_model(self.manifest, model_fingerprint(self.model), self.path)
        return self.model, self.processor

    # -----------------------------------------------------------------------------------------
    # what the index holds

    def __len__(self) -> int:
        return len(self.manifest["files"])

    @property
    def root(self) -> Path:
        """The indexed folder."""
        return Path(self.manifest["root"])

    @property
    def files(self) -> list[dict]:
        """Embedded files, in embedding order: `path` (relative), `size`, `mtime_ns`, `duration`,
        `sampling_rate`, `channels`."""
        return self.manifest["files"]

    @property
    def skipped(self) -> list[dict]:
        """Files that could not be decoded: `path`, `size`, `mtime_ns`, `reason`."""
        return self.manifest["skipped"]

    @property
    def stats(self) -> dict:
        """What the last build did: `embedded`, `reused`, `removed`, `skipped`, `files`,
        `audio_seconds` embedded, `seconds` taken (after loading the model)."""
        return self.manifest["stats"]


def _resolve_backend(backend: str) -> str:
    if backend == "numpy":
        return "numpy"
    try:
        import faiss  # noqa: F401
    except ImportError:
        if backend == "faiss":
            raise ImportError("backend='faiss' needs faiss-cpu: pip install faiss-cpu") from None
        return "numpy"
    return "faiss"


def _loaded(model: str | PreTrainedModel, processor: ProcessorMixin | None, trust_remote_code: bool,
            device: str | None) -> tuple[PreTrainedModel, ProcessorMixin]:
    """A model name loaded with its processor (eval mode, on `device` or CUDA when available),
    or a loaded model with the processor that must come with it."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(str(model), device or ("cuda" if torch.cuda.is_available() else "cpu"),
                          trust_remote_code)
    if processor is None:
        raise ValueError("a loaded model needs its processor: pass processor=SlapProcessor(...)")
    if device is not None:
        model = model.to(device)
    return model, processor


def _check_model(manifest: dict, fingerprint: str, path: str | os.PathLike,
                 remedy: str = "query with the index's model or rebuild the index") -> None:
    if manifest["model"]["fingerprint"] != fingerprint:
        raise ModelMismatch(
            f"{path} was built with the model {manifest['model']['name'] or '(unsaved)'} (weights "
            f"{manifest['model']['fingerprint'][:12]}), not with these weights ({fingerprint[:12]}); "
            f"embeddings of two models cannot be compared: {remedy}"
        )


def _previous_build(out: str | os.PathLike, root: str, identity: dict, rebuild: bool) -> dict[str, dict]:
    """What an existing index at `out` holds, by relative path (embedded files carry their `row`,
    skipped ones their `reason`); empty for a new index or `rebuild`."""
    if rebuild or not (Path(out) / MANIFEST).exists():
        return {}
    manifest, _ = _read(Path(out), embeddings=False)
    if manifest["root"] != root:
        raise ValueError(f"{out} indexes {manifest['root']}, not {root}: choose another output folder")
    _check_model(manifest, identity["fingerprint"], out,
                 "rebuild it (rebuild=True, `slap-search index --rebuild`) or write a new index")
    previous = {entry["path"]: dict(entry, row=row) for row, entry in enumerate(manifest["files"])}
    previous.update({entry["path"]: entry for entry in manifest["skipped"]})
    return previous


def _decoded_batches(root: str, files: list[LibraryFile], batch_seconds: float, skipped: list[dict],
                     progress: bool) -> Iterator[tuple[list[dict], list[np.ndarray], list[int]]]:
    """Decode `files` in order and yield them in packs of at most `batch_seconds` audio seconds
    (a longer file alone): `(entries, waveforms, rates)`. Undecodable files go to `skipped`."""
    entries, waveforms, rates, seconds = [], [], [], 0.0
    for file in tqdm(files, desc="index", unit="file", disable=not progress):
        path = str(Path(root) / file.path)
        try:
            audio, rate, channels = read_audio(path)
        except UndecodableAudio as error:  # its message names the file: the entry does already
            reason = str(error).removeprefix(f"{path}: ").replace(path, file.path)
            skipped.append(dict(file.as_dict(), reason=reason))
            continue
        duration = len(audio) / rate
        if entries and seconds + duration > batch_seconds:
            yield entries, waveforms, rates
            entries, waveforms, rates, seconds = [], [], [], 0.0
        entries.append(dict(file.as_dict(), duration=round(duration, 6), sampling_rate=rate, channels=channels))
        waveforms.append(audio)
        rates.append(rate)
        seconds += duration
    if entries:
        yield entries, waveforms, rates


@contextmanager
def _eval_mode(model: PreTrainedModel) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _read(path: Path, embeddings: bool = True) -> tuple[dict, np.ndarray | None]:
    if not (path / MANIFEST).exists():
        raise FileNotFoundError(f"{path} is not a search index (no {MANIFEST}); build one with "
                                "`slap-search index DIR --model M --out INDEX`")
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: index format {manifest.get('format')}, this version reads "
                         f"{FORMAT_VERSION}; build the index again")
    return manifest, (np.load(path / manifest["embeddings"]) if embeddings else None)


def _write(path: Path, manifest: dict, embeddings: np.ndarray) -> None:
    """The embeddings under a name of their content, then the manifest that names them, each
    written to a temporary file and renamed, then the previous embeddings are removed: an
    interrupted update leaves the previous index whole (an unchanged update rewrites the very file
    the manifest names)."""
    path.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(embeddings.tobytes()).hexdigest()[:16]
    manifest["embeddings"] = f"{EMBEDDINGS_STEM}-{digest}.npy"
    with open(path / (manifest["embeddings"] + ".tmp"), "wb") as handle:
        np.save(handle, embeddings)
    os.replace(path / (manifest["embeddings"] + ".tmp"), path / manifest["embeddings"])
    (path / (MANIFEST + ".tmp")).write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(path / (MANIFEST + ".tmp"), path / MANIFEST)
    for stale in path.glob(f"{EMBEDDINGS_STEM}-*"):  # older embeddings, an interrupted write's .tmp
        if stale.name != manifest["embeddings"]:
            stale.unlink()
