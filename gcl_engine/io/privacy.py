"""Salted hashes of patient identifiers: subjects stay distinguishable, identities never leave ``io``.

The salt is made once per machine, so the same patient gets the same hash across scans and runs on
this machine, but hashes cannot be matched against a list of IDs elsewhere. Never log raw identifiers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

from gcl_engine.errors import OutputError
from gcl_engine.io.atomic import os_error_to_output_error, temp_path_for

SALT_DIR_ENV = "GCL_STUDIO_SALT_DIR"
SALT_BYTES = 32
HASH_CHARS = 12


def salt_dir() -> Path:
    """``$GCL_STUDIO_SALT_DIR`` if set, else the per-user data folder of the app."""
    override = os.environ.get(SALT_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("gcl-studio"))


def _create_once(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` unless it already exists (``os.link`` fails then: no race)."""
    tmp = temp_path_for(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


@lru_cache(maxsize=8)
def _load_salt(folder: str) -> bytes:
    path = Path(folder) / "salt"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_once(path, secrets.token_bytes(SALT_BYTES))
        salt = path.read_bytes()
    except OSError as exc:
        translated = os_error_to_output_error(path, exc)
        raise translated or OutputError(f"cannot create the salt {path}: {exc.strerror}") from exc
    if len(salt) < 16:
        raise OutputError(f"{path}: the privacy salt is damaged (too short); delete it to make a new one")
    return salt


def machine_salt() -> bytes:
    """This machine's salt (created on first use)."""
    return _load_salt(str(salt_dir()))


def hash_identifier(value: str, salt: bytes | None = None) -> str:
    """12 hex characters of SHA-256(salt + value); the same value and salt always give the same hash."""
    key = machine_salt() if salt is None else salt
    return hashlib.sha256(key + value.strip().encode("utf-8")).hexdigest()[:HASH_CHARS]
