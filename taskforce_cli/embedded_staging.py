"""Where the embedded PostgreSQL keeps its data and finds its binaries when run as root.

initdb and postgres refuse to run as root, so as root the embedded PostgreSQL runs as an
unprivileged system user. That user must be able to traverse every parent of its data
directory and of the binaries. A clone under ``/root`` or under a ``mktemp -d`` directory
(both mode 0700) has a parent it cannot traverse; Taskforce never loosens the permissions
of the user's directories, so instead:

- the data directory, socket directory and log go to a per-project directory
  ``/var/lib/taskforce/embedded-<digest of the project's path>`` (root-owned, 0755; the
  FHS place for state kept between runs, which no temp-file cleaner ages out), and the
  project's ``DATA_DIR/embedded/postgres/pgdata-location.txt`` says where;
- the PostgreSQL binaries, libraries and data files of the ``pgserver`` wheel are copied
  once to ``/var/cache/taskforce/pgbin-<digest of the wheel's path, size and mtime>``
  (root-owned, 0755, never modified once complete; a cache, remade when missing) when
  the originals are not reachable.

When everything is reachable nothing is staged and the data stays under ``DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from shared.errors import ConfigurationError

POINTER_FILE = "pgdata-location.txt"


STATE_ROOT = Path("/var/lib/taskforce")
"""Parent of the staged data directories (root-owned, 0755)."""
CACHE_ROOT = Path("/var/cache/taskforce")
"""Parent of the staged copies of PostgreSQL (root-owned, 0755)."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def first_unsearchable(path: Path) -> Path | None:
    """The first of ``path`` and its parents (from ``/`` down) that others cannot traverse.

    Only the others-execute bit is looked at (not groups or ACLs): the service user owns
    none of these directories and is in none of their groups.

    Returns:
        That directory, or None when all of them are searchable by others.
    """
    for directory in [*reversed(path.parents), path]:
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            return directory
    return None


def _tree_readable_by_others(root: Path) -> bool:
    if first_unsearchable(root) is not None:
        return False
    for directory, _, files in os.walk(root):
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            return False
        for name in files:
            if not os.stat(Path(directory, name)).st_mode & stat.S_IROTH:
                return False
    return True


def _root_only_directory(path: Path, *, create: bool) -> Path:
    """Create ``path`` (root-owned, 0755) or check that an existing one is root's alone.

    Raises:
        ConfigurationError: It exists but is not a real directory, or is not owned by
            root, or is writable by group or others (then the service user, or anyone,
            could have changed what PostgreSQL runs or reads).
    """
    if create:
        try:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.mkdir(mode=0o755)
            path.chmod(0o755)
        except FileExistsError:
            pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise ConfigurationError(
            f"{path} is not a directory owned and writable only by root; the embedded "
            "PostgreSQL will not use it (remove it and run again)"
        )
    return path


def staged_home(directory: Path) -> Path:
    """The per-project staging directory for the embedded Postgres of ``directory``."""
    return STATE_ROOT / f"embedded-{_digest(str(directory.resolve()))}"


def _chown_tree(root: Path, ids: tuple[int, int]) -> None:
    os.chown(root, *ids, follow_symlinks=False)
    for path in root.rglob("*"):
        os.chown(path, *ids, follow_symlinks=False)


def data_home(directory: Path, ids: tuple[int, int], user: str) -> Path:
    """Where PostgreSQL running as ``ids`` keeps ``pgdata``, its socket and its log.

    Args:
        directory: The project's ``DATA_DIR/embedded/postgres`` (exists).
        ids: (uid, gid) of the service user PostgreSQL runs as.
        user: Its name, for the pointer file.

    Returns:
        ``directory`` itself (given to the service user, 0755) when the service user can
        traverse its parents; otherwise :func:`staged_home` with ``pgdata`` and ``run``
        (the socket directory) owned by the service user, mode 0700, and
        ``directory/pgdata-location.txt`` naming it. Once a project's data is staged it
        stays staged (the pointer file decides), so it is never silently replaced by an
        empty cluster.

    Raises:
        ConfigurationError: The staging directory exists but is not root's alone.
    """
    pointer = directory / POINTER_FILE
    blocked = first_unsearchable(directory.parent)
    if blocked is None and not pointer.exists():
        directory.chmod(0o755)
        _chown_tree(directory, ids)
        return directory
    _root_only_directory(STATE_ROOT, create=True)
    home = _root_only_directory(staged_home(directory), create=True)
    for name in ("pgdata", "run"):
        (home / name).mkdir(mode=0o700, exist_ok=True)
        (home / name).chmod(0o700)
        _chown_tree(home / name, ids)
    (home / "postgres.log").touch(mode=0o600)
    os.chown(home / "postgres.log", *ids, follow_symlinks=False)
    reason = (
        f"{blocked} is not searchable by others" if blocked else "it was staged there before"
    )
    text = (
        f"{home / 'pgdata'}\n\nThe embedded PostgreSQL of this project keeps its data (and "
        f"its log, postgres.log) in {home}: Taskforce ran as root, so PostgreSQL runs as "
        f"user {user!r}, which cannot reach this directory ({reason}). Remove that "
        "directory and this file to start from an empty database.\n"
    )
    if not pointer.exists() or pointer.read_text() != text:
        pointer.write_text(text)
    return home


def reachable_binaries(install: Path) -> Path:
    """A ``bin`` directory of PostgreSQL that the service user can execute.

    Args:
        install: The wheel's ``pginstall`` directory; its binaries load
            ``../../../pgserver.libs`` (auditwheel's RPATH), so that layout is kept.

    Returns:
        ``install / "bin"`` when it, ``lib``, ``share`` and ``pgserver.libs`` are readable
        by others; otherwise the ``bin`` of a root-owned copy under :data:`CACHE_ROOT`.

    Raises:
        ConfigurationError: The copy's directory exists but is not root's alone.
    """
    libs = install.parent.parent / "pgserver.libs"
    trees = [install / "bin", install / "lib", install / "share"]
    trees += [libs] if libs.is_dir() else []
    if all(_tree_readable_by_others(tree) for tree in trees):
        return install / "bin"
    postgres = os.stat(install / "bin" / "postgres")
    key = _digest(str(install), str(postgres.st_size), str(postgres.st_mtime_ns))
    target = _root_only_directory(CACHE_ROOT, create=True) / f"pgbin-{key}"
    if not os.path.lexists(target):
        _copy_install(trees, libs, target)
    _root_only_directory(target, create=False)
    return target / "pgserver" / "pginstall" / "bin"


def _copy_install(trees: list[Path], libs: Path, target: Path) -> None:
    """Copy ``trees`` to ``target`` (atomically: a scratch directory, then a rename)."""
    scratch = Path(tempfile.mkdtemp(prefix=".pgbin-", dir=target.parent))
    try:
        for tree in trees:
            relative = "pgserver.libs" if tree == libs else f"pgserver/pginstall/{tree.name}"
            shutil.copytree(tree, scratch / relative, symlinks=True,
                            ignore=shutil.ignore_patterns("*.a"))
        for directory, _, files in os.walk(scratch):
            os.chmod(directory, 0o755)
            for name in files:
                path = Path(directory, name)
                if not path.is_symlink():
                    executable = os.stat(path).st_mode & stat.S_IXUSR
                    path.chmod(0o755 if executable else 0o644)
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.is_dir():  # not merely another process finishing first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
