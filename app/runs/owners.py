"""Who holds a lease, and whether that holder is provably dead so its runs resume at once.

A lease owner is written `host/scope/pid/nonce`:

- `scope` names the process-id space the pid belongs to: a hash of the kernel's boot id and
  the pid namespace. Two processes with the same scope see the same pids, so one can ask the
  kernel whether the other is alive (`os.kill(pid, 0)`); a worker on another host (or in
  another container) has another scope and its lease is left to expire.
- `nonce` is new in every process start (an incarnation), so a restarted process never
  mistakes its predecessor's lease for its own.
- With a SQLite service database, every worker process also holds an exclusive `flock` on
  `<database>.workers/<nonce>.lock` for its lifetime. The kernel drops it when the process
  dies, however it dies, so a process that can take that lock knows the holder is gone, even
  from a new pid namespace (a restarted container keeps the database's volume, not its pids).

Anything else (an owner written by an older version, a foreign scope, a pid that is alive or
was reused) is not provably dead: its runs wait for the lease to expire, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from sqlalchemy.engine import make_url

from app.core.logging import get_logger

log = get_logger(__name__)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _pid_scope() -> str | None:
    """This process's pid space (boot id + pid namespace), or None where it cannot be known."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    if not boot:
        return None
    return hashlib.sha256(f"{boot}|{namespace}".encode()).hexdigest()[:12]


class Owner(NamedTuple):
    """The parts of a lease owner string."""

    host: str
    scope: str
    pid: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}/{self.scope}/{self.pid}/{self.nonce}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner written in a lease, or None for any other shape (older versions)."""
        parts = (text or "").split("/")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[1] or not parts[3]:
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a zombie counts as dead)."""
    if pid <= 0:
        return True  # not a single process: never conclude anything from it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    stat = _read(f"/proc/{pid}/stat")
    if stat is not None:
        state = stat.rsplit(")", 1)[-1].split()[:1]
        return state not in (["Z"], ["X"])
    return True


def lock_dir_for(database_url: str) -> Path | None:
    """Where the SQLite deployment keeps its workers' lock files (None for other databases)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return path.with_name(path.name + ".workers")


@dataclass
class WorkerIdentity:
    """This process's lease owner, and the lock file that proves it alive (SQLite)."""

    owner: Owner
    scope_known: bool
    _lock: IO[bytes] | None = field(default=None, repr=False)
    _lock_dir: Path | None = None

    @classmethod
    def create(cls) -> WorkerIdentity:
        """A new incarnation of this process."""
        scope = _pid_scope()
        host = socket.gethostname().replace("/", "_")[:64] or "host"
        owner = Owner(host, scope or "unknown", os.getpid(), uuid.uuid4().hex[:12])
        return cls(owner=owner, scope_known=scope is not None)

    def __str__(self) -> str:
        return str(self.owner)

    def hold_lock(self, database_url: str) -> None:
        """Takes this incarnation's lock file next to a SQLite database (once; best effort)."""
        directory = lock_dir_for(database_url)
        if directory is None or self._lock is not None:
            return
        temporary = directory / f"{self.owner.nonce}.tmp"
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            handle = temporary.open("wb")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Locked before it gets its name: a file under that name is never unlocked while
            # its process lives.
            temporary.rename(directory / f"{self.owner.nonce}.lock")
        except OSError as exc:
            log.warning("no worker lock file; runs resume after their lease", error=str(exc))
            return
        # Held until the process ends: the kernel releases it however the process ends.
        self._lock, self._lock_dir = handle, directory

    def is_dead(self, text: str | None) -> bool:
        """Whether the holder of a lease is provably dead (its runs may resume now)."""
        other = Owner.parse(text)
        if other is None or other.nonce == self.owner.nonce:
            return False
        if self._lock_dir is not None and _lock_free(self._lock_dir / f"{other.nonce}.lock"):
            return True
        if not self.scope_known or other.scope != self.owner.scope:
            return False  # another host or container: only its lease can tell
        if other.pid == self.owner.pid:
            return False  # this very process (another runtime in it), so alive
        return not pid_alive(other.pid)

    def forget(self, text: str | None) -> None:
        """Removes a dead holder's lock file once its runs were taken over."""
        other = Owner.parse(text)
        if other is not None and self._lock_dir is not None and other.nonce != self.owner.nonce:
            with contextlib.suppress(OSError):
                (self._lock_dir / f"{other.nonce}.lock").unlink()

    def prune(self) -> int:
        """Removes the lock files of processes that died holding no run; returns how many."""
        if self._lock_dir is None:
            return 0
        removed = 0
        for path in self._lock_dir.glob("*.lock"):
            if path.stem != self.owner.nonce and _lock_free(path):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed


def _lock_free(path: Path) -> bool:
    """Whether nobody holds the lock on this file (False when there is no such file)."""
    try:
        handle = path.open("rb")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
