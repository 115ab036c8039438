"""Point `huggingface_hub` (and `transformers`) at a local Hub, in this process or a subprocess.

`huggingface_hub` reads its configuration from the environment once, at import time, into
module globals; objects created later copy some of them. Setting `HF_ENDPOINT` in `os.environ`
after the import therefore changes nothing. `hub_client` patches what actually decides where
requests go, for the duration of a `with` block:

* `huggingface_hub.constants.ENDPOINT` and `HUGGINGFACE_CO_URL_TEMPLATE` (`hf_hub_url`,
  `HfApi()` created inside the block, `RepoUrl` parsing), plus the endpoint's host in
  `HF_URL_HOSTS`;
* `huggingface_hub.hf_api.api.endpoint`: the module-level `HfApi` behind the functional API
  (`huggingface_hub.create_repo`, `whoami`, `file_exists`, ...), built at import time;
* `transformers.utils.hub._hf_api`: transformers' cached `HfApi` (reset, so it is rebuilt with the
  local endpoint and dropped again afterwards);
* `constants.HF_HUB_OFFLINE = False` (the test suite runs with `HF_HUB_OFFLINE=1`; offline mode is
  read from this global by `is_offline_mode()` on every request);
* `constants.HF_HUB_DISABLE_XET = True`: with `hf_xet` installed, uploads always go through Xet
  (the client decides this alone, from this flag, before talking to the server), so the flag is
  the only way to get the LFS "basic" transfer the local hub implements;
* `constants.HF_HUB_DISABLE_TELEMETRY = True`;
* `os.environ` becomes `hub_env(endpoint, token, hf_home)` (below): `HF_ENDPOINT`,
  `HF_HUB_OFFLINE=0`, `HF_HUB_DISABLE_XET=1`, `NO_PROXY` += the local host, `HF_TOKEN` (read at
  call time by `get_token()`, so it is the implicit token of every call) and `HF_HOME`; code that
  reads the environment and subprocesses started inside the block agree with the patches;
* with `hf_home`, the cache and token paths in `constants` (`HF_HUB_CACHE`, `HF_TOKEN_PATH`, ...);
* the shared `httpx` client is closed on entry and exit (it captured proxy settings).

Everything is restored on exit. For a subprocess, `hub_env` builds the environment instead.
`HfApi` objects created *before* the block keep their endpoint: create them inside it, or pass
`HfApi(endpoint=hub.endpoint)`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

__all__ = ["hub_client", "hub_env"]

_ENV_OFF = ("TRANSFORMERS_OFFLINE", "HF_HUB_ENABLE_HF_TRANSFER", "HUGGING_FACE_HUB_TOKEN")


def _no_proxy(base: Mapping[str, str]) -> str:
    current = base.get("NO_PROXY") or base.get("no_proxy") or ""
    hosts = [h for h in current.split(",") if h]
    return ",".join(hosts + [h for h in ("127.0.0.1", "localhost") if h not in hosts])


def hub_env(
    endpoint: str,
    token: str | None = None,
    hf_home: str | Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a subprocess that must use the Hub at `endpoint`.

    Starts from `base` (default: `os.environ`), sets `HF_ENDPOINT`, `HF_HUB_OFFLINE=0`,
    `HF_HUB_DISABLE_XET=1`, `HF_HUB_DISABLE_TELEMETRY=1`, `NO_PROXY`, `HF_TOKEN` (or removes it
    when `token` is None) and `HF_HOME` when given (use a temp dir: a fresh cache and no stored
    token), and removes `TRANSFORMERS_OFFLINE` / `HUGGING_FACE_HUB_TOKEN`.
    """
    env = dict(os.environ if base is None else base)
    for key in _ENV_OFF:
        env.pop(key, None)
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY=_no_proxy(env),
        no_proxy=_no_proxy(env),
    )
    if token is None:
        env.pop("HF_TOKEN", None)
    else:
        env["HF_TOKEN"] = token
    if hf_home is not None:
        env["HF_HOME"] = str(hf_home)
        for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_XET_CACHE"):
            env.pop(key, None)
    return env


@contextmanager
def hub_client(
    endpoint: str, token: str | None = None, hf_home: str | Path | None = None
) -> Iterator[None]:
    """Within the block, this process's `huggingface_hub`/`transformers` talk to `endpoint`.

    Args:
        endpoint: e.g. `HubServer.endpoint` (`http://127.0.0.1:PORT`).
        token: sets `HF_TOKEN` (the implicit token of every call); None unsets it.
        hf_home: if given, the download cache goes to `<hf_home>/hub` (patched in
            `huggingface_hub.constants` and `HF_HOME`/`HF_HUB_CACHE`), and the stored-token file
            to `<hf_home>/token`.
    """
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _http

    endpoint = endpoint.rstrip("/")
    host = urlsplit(endpoint).hostname or "127.0.0.1"
    env = hub_env(endpoint, token=token, hf_home=hf_home)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env, clear=True))  # restored on exit
        patches: dict[str, object] = {
            "ENDPOINT": endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": constants.HF_URL_HOSTS | {host},
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_DISABLE_TELEMETRY": True,
        }
        if hf_home is not None:
            home = Path(hf_home)
            patches.update(
                HF_HOME=str(home),
                HF_HUB_CACHE=str(home / "hub"),
                HUGGINGFACE_HUB_CACHE=str(home / "hub"),
                HF_ASSETS_CACHE=str(home / "assets"),
                HF_TOKEN_PATH=str(home / "token"),
                HF_STORED_TOKENS_PATH=str(home / "stored_tokens"),
                HF_XET_CACHE=str(home / "xet"),
            )
        for name, value in patches.items():
            stack.enter_context(mock.patch.object(constants, name, value))
        stack.enter_context(mock.patch.object(hf_api.api, "endpoint", endpoint))
        stack.enter_context(mock.patch.object(hf_api.api, "_whoami_cache", {}))
        transformers_hub = sys.modules.get("transformers.utils.hub")
        if transformers_hub is not None and hasattr(transformers_hub, "_hf_api"):
            stack.enter_context(mock.patch.object(transformers_hub, "_hf_api", None))
        stack.callback(_forget_transformers_api)  # in case transformers got imported in the block
        stack.callback(_http.close_session)
        _http.close_session()
        yield


def _forget_transformers_api() -> None:
    module = sys.modules.get("transformers.utils.hub")
    if module is not None and getattr(module, "_hf_api", None) is not None:
        module._hf_api = None
