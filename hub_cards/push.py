"""Publish a SLAP model or PEFT adapter to the Hugging Face Hub in one checked commit.

    slap-push runs/final alice/slap-tiny --metrics results.json --plots plots/similarity.png
    slap-push runs/lora alice/slap-tiny-lora --base-model alice/slap-tiny --revision experiment
    slap-push runs/final alice/slap-tiny --space alice/slap-tiny-demo    # and its demo app as a Space

or from Python: `push_model(model_or_folder, "alice/slap-tiny", processor=processor, ...)`,
`push_adapter(peft_model, "alice/slap-tiny-lora", base_model="alice/slap-tiny")`,
`push_space("alice/slap-tiny-demo", "alice/slap-tiny")` (the Gradio app of `app.py`, see `stage_space`).

The flow: find a token (`token=`, `HF_TOKEN` or `hf auth login`) and check the endpoint it will be
sent to (https, or http only on this machine's loopback), stage every file in a temporary
folder (weights as safetensors only, `config.json` with `auto_map`, the model code, processor
files, a README.md card rendered from the eval results, plots), check the staged folder and the
card, ask the Hub who we are and whether the repository holds anything that is not ours, then
create the repository / branch and upload everything in ONE commit. The commit also deletes
files of an earlier push that this push no longer has, so the repository mirrors the staged
folder. If a step fails before the commit lands, a repository or branch created by this call is
removed again; once the commit has landed (even when its answer was lost to a timeout), nothing
is removed. The token is sent only to `endpoint` and never printed or logged.

`model.push_to_hub(repo_id)` / `processor.push_to_hub(repo_id)` from `transformers` also work
(after `register_auto_classes()`), without the card and the checks.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    constants,
    get_token,
)
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

from .card import (
    CardValidationError,
    render_adapter_card,
    render_model_card,
    validate_card,
)
from .staging import (
    CARD_KEYS,
    Kind,
    PushError,
    check_staged,
    count_parameters,
    is_ours,
    stage_adapter,
    stage_model,
    stage_plots,
    stage_space,
)

__all__ = ["PushError", "checked_endpoint", "main", "push_adapter", "push_model", "push_space", "resolve_token"]

logger = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of whichever HTTP client `huggingface_hub` uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx", "requests"):
        loaded = sys.modules.get(module)
        for name in ("TransportError", "ConnectionError", "Timeout"):
            error = getattr(loaded, name, None)
            if isinstance(error, type) and issubclass(error, BaseException):
                errors.append(error)
    return tuple(errors)


def resolve_token(token: str | None = None) -> str:
    """`token`, else `HF_TOKEN`, else the token saved by `hf auth login`; `PushError` if none."""
    token = token or get_token()
    if not token:
        raise PushError(
            "no Hugging Face token found: run `hf auth login`, set HF_TOKEN, or pass token=... "
            "(a token with write access). Nothing was created."
        )
    return token


def checked_endpoint(endpoint: str | None = None) -> str:
    """The Hub URL a push sends its token to (`endpoint`, else `HF_ENDPOINT`), without a trailing slash.

    Only `https://` URLs, or `http://` on the loopback interface (127.0.0.0/8, ::1, localhost: a
    local test hub), are accepted; anything else is a `PushError` raised before any request, so the
    token never travels in clear text or to a host the user did not mean.
    """
    url = (endpoint or constants.ENDPOINT).rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    raise PushError(
        f"refusing to send the Hub token to {url!r}: the endpoint must be an https:// URL (http:// "
        "only on this machine: 127.0.0.1, ::1 or localhost). Check --endpoint / HF_ENDPOINT. Nothing was sent."
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _hub_errors(endpoint: str, repo_id: str) -> Iterator[None]:
    """Turn network and HTTP failures into `PushError`s that say what to do."""
    try:
        yield
    except OfflineModeIsEnabled as e:
        raise PushError("HF_HUB_OFFLINE=1 is set: unset it to push to the Hub") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise PushError(
                f"the Hub at {endpoint} rejected the token (401): log in again with `hf auth login` "
                "or set HF_TOKEN to a valid token with write access"
            ) from e
        if status == 403:
            raise PushError(f"the token has no write access to {repo_id} at {endpoint} (403)") from e
        raise PushError(f"the Hub at {endpoint} answered {status} for {repo_id}: {e}") from e
    except _transport_errors() as e:
        raise PushError(
            f"cannot reach the Hub at {endpoint} ({e.__class__.__name__}: {e}); check the network, "
            "HF_ENDPOINT or --endpoint"
        ) from e


def _foreign_files(api: HfApi, repo_id: str, revision: str, files: list[str], stage: Path, kind: Kind) -> list[str]:
    """Files at `revision` that a SLAP push of `kind` did not write (or a config of another model)."""
    foreign = [f for f in files if not is_ours(f, kind)]
    if kind == "model" and "config.json" in files:
        with tempfile.TemporaryDirectory(prefix="slap-push-remote-") as tmp:
            remote = json.loads(Path(api.hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=tmp))
                                .read_text(encoding="utf-8"))  # fmt: skip
        ours = json.loads((stage / "config.json").read_text(encoding="utf-8")).get("model_type")
        if remote.get("model_type") != ours:
            foreign.append(f"config.json (model_type {remote.get('model_type')!r}, not {ours!r})")
    return foreign


def _remote_files(
    api: HfApi, repo_id: str, stage: Path, kind: Kind, *, revision: str | None, private: bool,
    allow_overwrite: bool,
) -> tuple[bool, set[str], list[str]]:  # fmt: skip
    """(repo exists, its branches, files at the branch the push starts from); refuses a
    repository holding foreign files (unless `allow_overwrite`) or a public one for a private push."""
    repo_type = _repo_type(kind)
    try:
        info = api.repo_info(repo_id, repo_type=repo_type)
    except RepositoryNotFoundError:
        return False, set(), []
    branches = {b.name for b in api.list_repo_refs(repo_id, repo_type=repo_type).branches}
    base = revision if revision in branches else "main"
    files = api.list_repo_files(repo_id, revision=base, repo_type=repo_type)
    foreign = _foreign_files(api, repo_id, base, files, stage, kind)
    if foreign and not allow_overwrite:
        raise PushError(
            f"{repo_id} already holds files that a SLAP {kind} push did not write: "
            f"{', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}. Nothing was uploaded. "
            "Push to another repo id, or pass allow_overwrite=True (--overwrite) to replace its content."
        )
    if private and not info.private:
        raise PushError(
            f"{repo_id} exists and is public; a private push would publish this model. Make the "
            "repository private on the Hub first, or push without --private."
        )
    return True, branches, files


def _repo_type(kind: Kind) -> str:
    return "space" if kind == "space" else "model"


def _publish(
    stage: Path, repo_id: str, kind: Kind, *, token: str, endpoint: str, private: bool,
    revision: str | None, commit_message: str, allow_overwrite: bool,
) -> CommitInfo:  # fmt: skip
    """Check the remote side, then create repo/branch and upload `stage` in one commit to `endpoint`
    (a `checked_endpoint`)."""
    if constants.HF_HUB_OFFLINE:
        raise PushError("HF_HUB_OFFLINE=1 is set: unset it to push to the Hub")
    api, repo_type = HfApi(endpoint=endpoint, token=token), _repo_type(kind)
    created: dict[str, str] = {}  # "repo" / "branch" -> its head right after this push created it
    try:
        with _hub_errors(endpoint, repo_id):
            user = api.whoami()["name"]
            try:  # the Hub's own card validation (local checks passed in `check_staged`)
                validate_card((stage / "README.md").read_text(encoding="utf-8"), endpoint=endpoint,
                              required=CARD_KEYS[kind], repo_type=repo_type)  # fmt: skip
            except CardValidationError as e:
                raise PushError(f"not pushing: {e}") from e
            exists, branches, files = _remote_files(
                api, repo_id, stage, kind, revision=revision, private=private, allow_overwrite=allow_overwrite
            )
            staged = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
            operations: list[Any] = [CommitOperationAdd(f, stage / f) for f in staged]
            # the repository mirrors the staged folder: files of an earlier push that are gone go
            operations += [CommitOperationDelete(f) for f in files if f not in staged and f != ".gitattributes"]
            if not exists:
                api.create_repo(repo_id, private=private, repo_type=repo_type,
                                space_sdk="gradio" if kind == "space" else None)  # fmt: skip
                created["repo"] = api.repo_info(repo_id, repo_type=repo_type).sha
            if revision and revision not in branches:
                api.create_branch(repo_id, branch=revision, repo_type=repo_type)
                created["branch"] = api.repo_info(repo_id, revision=revision, repo_type=repo_type).sha
            logger.info("Uploading %d files to %s/%s (%s) as %s", len(staged), endpoint, repo_id,
                        revision or "main", user)  # fmt: skip
            commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision,
                                       repo_type=repo_type)  # fmt: skip
    except BaseException:
        _roll_back(api, repo_id, created, revision, repo_type)
        raise
    logger.info("Pushed %s", commit.commit_url)
    return commit


def _roll_back(api: HfApi, repo_id: str, created: Mapping[str, str], revision: str | None,
               repo_type: str = "model") -> None:
    """Remove the repository or branch this push created, unless a commit has landed on it.

    A commit whose answer was lost (a timeout) may still have landed: the head is read again and
    anything whose head moved, or whose head cannot be read, is kept (best effort, never raises).
    """
    if not created:
        return
    what = "repository" if "repo" in created else f"branch {revision}"
    target = "branch" if "branch" in created else "repo"  # where the commit would have landed
    try:
        head = api.repo_info(repo_id, revision=revision if target == "branch" else None, repo_type=repo_type).sha
        if head != created[target]:
            logger.warning("The commit reached %s (now at %s): the %s created by this push is kept.", repo_id, head, what)
        elif "repo" in created:
            api.delete_repo(repo_id, missing_ok=True, repo_type=repo_type)
        elif revision:
            api.delete_branch(repo_id, branch=revision, repo_type=repo_type)
    except Exception as e:  # the original error matters more than the clean-up's
        logger.warning("Kept the %s created for %s (could not check or remove it: %s)", what, repo_id, e)


def _is_adapter(source: Any) -> bool:
    if isinstance(source, (str, Path)):
        return (Path(source) / "adapter_config.json").is_file()
    return hasattr(source, "peft_config") and hasattr(source, "get_base_model")


def push_model(
    folder_or_model: Any,
    repo_id: str,
    *,
    processor: Any = None,
    metrics_json: str | Path | Mapping[str, Any] | None = None,
    plots: Iterable[str | Path] = (),
    training_config: Mapping[str, Any] | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload SLAP model",
    token: str | None = None,
    endpoint: str | None = None,
    allow_overwrite: bool = False,
    license: str = "apache-2.0",
    datasets: str | Sequence[str] | None = None,
    base_model: str | None = None,
    card: ModelCard | str | None = None,
) -> CommitInfo:
    """Publish a SLAP checkpoint (a `PreTrainedModel` or a `save_pretrained` folder) to `repo_id`.

    A `PeftModel` or an adapter folder is handed to `push_adapter` (`base_model` is then the base
    model's repo id). `card` replaces the rendered model card. `revision` is a branch, created
    from `main` when missing. Returns the commit; raises `PushError` (nothing published) when the
    token, the staged files, the card, the network or the existing repository content say no.
    See the module docstring for the flow.
    """
    if _is_adapter(folder_or_model):
        return push_adapter(
            folder_or_model, repo_id, base_model=base_model, metrics_json=metrics_json, plots=plots,
            training_config=training_config, private=private, revision=revision, token=token,
            commit_message=commit_message if commit_message != "Upload SLAP model" else "Upload SLAP adapter",
            endpoint=endpoint, allow_overwrite=allow_overwrite, license=license, datasets=datasets, card=card,
        )  # fmt: skip
    token, endpoint = resolve_token(token), checked_endpoint(endpoint)
    with tempfile.TemporaryDirectory(prefix="slap-push-") as tmp:
        stage = Path(tmp)
        config = stage_model(folder_or_model, stage, processor)
        plot_paths = stage_plots(plots, stage)
        if card is None:
            card = render_model_card(
                repo_id, config=config, metrics=_metrics(metrics_json), training_config=training_config,
                plots=plot_paths, license=license, datasets=datasets, base_model=base_model,
                num_parameters=count_parameters(stage),
            )  # fmt: skip
        (stage / "README.md").write_text(str(card), encoding="utf-8")
        check_staged(stage, "model")
        return _publish(
            stage, repo_id, "model", token=token, endpoint=endpoint, private=private, revision=revision,
            commit_message=commit_message, allow_overwrite=allow_overwrite,
        )  # fmt: skip


def push_adapter(
    peft_model_or_folder: Any,
    repo_id: str,
    *,
    base_model: str | None = None,
    metrics_json: str | Path | Mapping[str, Any] | None = None,
    plots: Iterable[str | Path] = (),
    training_config: Mapping[str, Any] | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload SLAP adapter",
    token: str | None = None,
    endpoint: str | None = None,
    allow_overwrite: bool = False,
    license: str = "apache-2.0",
    datasets: str | Sequence[str] | None = None,
    card: ModelCard | str | None = None,
) -> CommitInfo:
    """Publish a PEFT adapter of a SLAP model: `adapter_config.json`, `adapter_model.safetensors`
    and a card with `library_name: peft` and `base_model`.

    `base_model` is the Hub repo id of the model the adapter was trained on (default: the
    adapter config's `base_model_name_or_path` when that is a repo id); it is written into the
    uploaded `adapter_config.json`, so `PeftModel.from_pretrained(base, repo_id)` and
    `AutoPeftModel` find it. Other arguments as in `push_model`.
    """
    token, endpoint = resolve_token(token), checked_endpoint(endpoint)
    with tempfile.TemporaryDirectory(prefix="slap-push-") as tmp:
        stage = Path(tmp)
        adapter_config, base_model = stage_adapter(peft_model_or_folder, stage, base_model)
        plot_paths = stage_plots(plots, stage)
        if card is None:
            card = render_adapter_card(
                repo_id, base_model, adapter_config=adapter_config, metrics=_metrics(metrics_json),
                training_config=training_config, plots=plot_paths, license=license, datasets=datasets,
            )  # fmt: skip
        (stage / "README.md").write_text(str(card), encoding="utf-8")
        check_staged(stage, "adapter")
        return _publish(
            stage, repo_id, "adapter", token=token, endpoint=endpoint, private=private, revision=revision,
            commit_message=commit_message, allow_overwrite=allow_overwrite,
        )  # fmt: skip


def push_space(
    space_id: str,
    model_id: str,
    *,
    title: str | None = None,
    requirement: str | None = None,
    private: bool = False,
    commit_message: str = "Upload SLAP demo app",
    token: str | None = None,
    endpoint: str | None = None,
    allow_overwrite: bool = False,
    license: str = "apache-2.0",
) -> CommitInfo:
    """Publish the demo app as the Gradio Space `space_id`, serving the Hub model `model_id`.

    The Space holds `app.py`, `requirements.txt` and its card (see `stage_space`; `requirement`
    replaces the pip requirement of this package). Same checks and one-commit flow as `push_model`.
    """
    token, endpoint = resolve_token(token), checked_endpoint(endpoint)
    with tempfile.TemporaryDirectory(prefix="slap-push-space-") as tmp:
        stage = Path(tmp)
        stage_space(stage, model_id, title=title, requirement=requirement, license=license)
        check_staged(stage, "space")
        return _publish(
            stage, space_id, "space", token=token, endpoint=endpoint, private=private, revision=None,
            commit_message=commit_message, allow_overwrite=allow_overwrite,
        )  # fmt: skip


def _metrics(metrics_json: str | Path | Mapping[str, Any] | None) -> Any:
    """Read the metrics early so a bad file is a `PushError`, not a traceback."""
    if metrics_json is None:
        return None
    from .metrics import read_metrics

    try:
        report = read_metrics(metrics_json)
    except (OSError, ValueError) as e:
        raise PushError(f"cannot read the metrics {metrics_json}: {e}") from e
    for entry in report.skipped:
        logger.warning("Metrics entry left out of the card: %s", entry)
    return report


def _training_config(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def main(argv: Sequence[str] | None = None) -> int:
    """`slap-push FOLDER REPO_ID [options]`: publish a saved SLAP model or adapter folder."""
    parser = argparse.ArgumentParser(
        prog="slap-push",
        description="Publish a SLAP model (or PEFT adapter) folder to the Hugging Face Hub in one checked "
        "commit. The token comes from HF_TOKEN or `hf auth login`.",
    )  # fmt: skip
    parser.add_argument("folder", help="a save_pretrained folder (model + processor), or a PEFT adapter folder")
    parser.add_argument("repo_id", help="namespace/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="push to this branch (created from main if missing)")
    parser.add_argument("--commit-message", help="the commit title")
    parser.add_argument("--metrics", help="eval results JSON (the eval suite's output) for the card")
    parser.add_argument("--plots", nargs="+", default=[], metavar="PNG", help="PNG plots embedded in the card")
    parser.add_argument("--training-config", help="training configuration (YAML or JSON) shown in the card")
    parser.add_argument("--overwrite", action="store_true", help="replace a repository holding other files")
    parser.add_argument("--license", default="apache-2.0", help="card license (default: apache-2.0)")
    parser.add_argument("--dataset", action="append", dest="datasets", help="training dataset id (repeatable)")
    parser.add_argument("--base-model", help="base model repo id (card metadata; required for adapters)")
    parser.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--space", metavar="SPACE_ID", help="also publish the demo app (app.py) as this Gradio "
                        "Space, serving REPO_ID")
    parser.add_argument("--space-requirement", metavar="SPEC", help="the Space's pip requirement for this "
                        "package (default: slap-audio[app,eval]==<this version>; e.g. a git+https:// URL)")
    args = parser.parse_args(argv)
    if args.space and _is_adapter(args.folder):
        parser.error("--space publishes an app that serves a full model; FOLDER is a PEFT adapter")
    package_logger = logging.getLogger(__package__)  # our progress lines, not every HTTP request
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        commit = push_model(
            args.folder, args.repo_id, metrics_json=args.metrics, plots=args.plots,
            training_config=_training_config(args.training_config), private=args.private,
            revision=args.revision, endpoint=args.endpoint, allow_overwrite=args.overwrite,
            license=args.license, datasets=args.datasets, base_model=args.base_model,
            **({"commit_message": args.commit_message} if args.commit_message else {}),
        )  # fmt: skip
        print(commit.commit_url)
        if args.space:
            space = push_space(args.space, args.repo_id, requirement=args.space_requirement, private=args.private,
                               endpoint=args.endpoint, allow_overwrite=args.overwrite, license=args.license)
            print(space.commit_url)
    except (PushError, CardValidationError, OSError, ValueError) as e:
        print(f"slap-push: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
