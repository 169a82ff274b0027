"""Read a config as it was at a Git ref, includes and template files with it."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from .._errors import GatewayError

__all__ = ["GitError", "export_config"]


class GitError(GatewayError):
    """Git could not give the config at that ref."""


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than 60 s") from None
    if done.returncode != 0:
        raise GitError(done.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return done.stdout


def export_config(ref: str, config: str | Path, dest: Path) -> Path | None:
    """Write the config's directory as it was at `ref` into `dest`; return the old root file there,
    or None when the file did not exist at `ref` (every tool is then new).

    The config root is the root file's directory and includes cannot leave it, so that directory
    holds everything the old config read."""
    path = Path(config).resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], path.parent).decode().strip())
    relative = path.relative_to(top)
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    try:
        _git(["cat-file", "-e", f"{ref}:{relative.as_posix()}"], top)
    except GitError:
        return None
    folder = relative.parent.as_posix()
    archive = _git(["archive", "--format=tar", ref, "--", folder if folder != "." else "."], top)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / relative
