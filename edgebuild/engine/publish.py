"""Copy a rule's cached outputs to ``build_dir/<rule>/``, skipping the copy when unchanged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgebuild.engine.hashing import walk_files


def publish(object_dir: Path, files: list, dest: Path) -> bool:
    """Make ``dest`` an exact copy of ``object_dir`` (whose manifest is ``files``).

    Returns False without touching anything when ``dest`` already holds the same files (same
    names, sizes and modification times as the cached copies). Otherwise the copy is staged
    next to ``dest`` and swapped in with renames, so readers never see a half-published dir.
    """
    if _up_to_date(object_dir, files, dest):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{os.urandom(4).hex()}"
    staging = dest.parent / f".{dest.name}.{token}.new"
    staging.mkdir()
    for rel, _, _ in files:
        src, dst = object_dir / rel, staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        st = os.stat(src)
        if st.st_mode & 0o111:          # keep executables (host binaries) runnable
            os.chmod(dst, 0o755)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    if dest.exists() or dest.is_symlink():
        old = dest.parent / f".{dest.name}.{token}.old"
        os.rename(dest, old)
        os.rename(staging, dest)
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    else:
        os.rename(staging, dest)
    return True


def _up_to_date(object_dir: Path, files: list, dest: Path) -> bool:
    if not dest.is_dir() or dest.is_symlink():
        return False
    if walk_files(dest) != sorted(rel for rel, _, _ in files):
        return False
    for rel, _, size in files:
        try:
            have = os.stat(dest / rel)
        except FileNotFoundError:
            return False
        if have.st_size != size or have.st_mtime_ns != os.stat(object_dir / rel).st_mtime_ns:
            return False
    return True
