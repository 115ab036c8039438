"""Debian packages as data: `apt-get download` into a cache and `dpkg-deb -x`, never installed.

The cache holds the `.deb` files as apt names them (`<name>_<version>_<arch>.deb`) and one
unpacked tree per package and version (`unpacked/<name>_<version>/`). Both steps write into a
temporary name and rename when complete, so an interrupted fetch resumes where it stopped and
never leaves a half-written file behind.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "slap_audio" / "debian"
)


class AptUnavailable(RuntimeError):
    """Raised when the Debian tools (apt-get, dpkg-deb) are missing or a download fails."""


@dataclass(frozen=True)
class Package:
    """One fetched and unpacked Debian package."""

    name: str
    version: str
    deb: Path
    root: Path  # the folder the .deb was unpacked into


def fetch_packages(
    names: Iterable[str], cache: str | os.PathLike = DEFAULT_CACHE
) -> dict[str, Package]:
    """Download (if not cached) and unpack (if not yet unpacked) each package; {name: Package}.

    Raises `AptUnavailable` with what to do when the tools are missing or apt cannot find a
    package (no package lists: `apt-get update`; not Debian 12: the names differ)."""
    names = sorted(set(names))
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    missing = [name for name in names if _cached_deb(cache, name) is None]
    if missing:
        _download(missing, cache)
    return {name: _unpack(cache, _cached_deb(cache, name)) for name in names}


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise AptUnavailable(
            f"`{tool}` is not installed: `slap-data debian` reads Debian 12 (bookworm) packages "
            "and needs apt-get and dpkg-deb (run it on Debian, or in a debian:12 container)"
        )


def _download(names: list[str], cache: Path) -> None:
    _require("apt-get")
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as partial:
        result = _apt_get_download(names, partial)
        if result.returncode != 0 and os.geteuid() == 0:  # a fresh machine: no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            result = _apt_get_download(names, partial)
        if result.returncode != 0:
            raise AptUnavailable(
                f"apt-get download {' '.join(names)} failed: {result.stderr.strip()}\n"
                "(are the Debian 12 package lists there? run `apt-get update` as root)"
            )
        for deb in sorted(Path(partial).glob("*.deb")):
            deb.rename(cache / deb.name)


def _apt_get_download(names: list[str], folder: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", "download", "-q", *names],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def _cached_deb(cache: Path, name: str) -> Path | None:
    """The newest cached .deb of `name` (package names cannot hold `_`: the prefix is exact)."""
    debs = list(cache.glob(f"{name}_*.deb"))
    if not debs:
        return None
    return max(
        debs,
        key=functools.cmp_to_key(
            lambda a, b: _compare_versions(_field(a, "Version"), _field(b, "Version"))
        ),
    )


def _compare_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    newer = subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0
    return 1 if newer else -1


def _field(deb: Path, name: str) -> str:
    _require("dpkg-deb")
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def _unpack(cache: Path, deb: Path) -> Package:
    name, version = _field(deb, "Package"), _field(deb, "Version")
    root = cache / "unpacked" / f"{name}_{version.replace(':', '%3a')}"
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=root.parent, prefix=".unpack-"))
        try:
            subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True
            )
            try:
                partial.rename(root)
            except OSError:  # another build unpacked it meanwhile
                if not root.is_dir():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return Package(name=name, version=version, deb=deb, root=root)


def tool_versions(tools: Iterable[str]) -> dict[str, str | None]:
    """{tool: version of the Debian package that installed it} (None where unknown)."""
    versions = {}
    for tool in sorted(set(tools)):
        path, version = shutil.which(tool), None
        owner = path and subprocess.run(
            ["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True, check=False
        )
        if owner and owner.returncode == 0:
            package = owner.stdout.split(":")[0].strip()
            query = ["dpkg-query", "-W", "-f", "${Version}", package]
            version = (
                subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()
                or None
            )
        versions[tool] = version
    return versions
