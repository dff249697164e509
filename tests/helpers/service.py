"""A real ``driftwatch serve`` (hence a real ``bentoml serve``) for tests.

``ServiceProcess`` starts the CLI in its own process group on a free port,
with its own data directory (SQLite file, spool) and the store URL it is
given, waits for ``/readyz``, and can ``kill -9`` the whole service.

Two facts about BentoML shape this helper:

* circus starts every worker with ``setsid()``: workers are *not* in the
  server's process group. ``kill9(tree=True)`` therefore freezes the arbiter,
  collects every descendant, and kills the group and each descendant, so a
  crash takes down the workers in the middle of their requests.
* ``bentoml serve`` wipes and reuses ``$BENTOML_HOME/prometheus_multiproc_dir``.
  Services sharing one model store would clobber and sum each other's
  metrics, so each service gets a private ``BENTOML_HOME`` whose ``models``
  is a symlink to the shared model store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DRIFTWATCH = str(BIN / "driftwatch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(data_dir: Path, bentoml_home: Path, database_url: str | None = None,
              extra: dict[str, Any] | None = None) -> dict[str, str]:
    """A clean environment: nothing of the caller's DRIFTWATCH_* / BENTOML_HOME leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRIFTWATCH_", "BENTOML_", "PROMETHEUS_MULTIPROC"))}
    env.update({
        "DRIFTWATCH_DATA_DIR": str(data_dir),
        "BENTOML_HOME": str(bentoml_home),
        "DRIFTWATCH_BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONUNBUFFERED": "1",
    })
    if database_url:
        env["DRIFTWATCH_DATABASE_URL"] = database_url
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def run_cli(args: list[str], *, data_dir: Path, bentoml_home: Path, database_url: str | None = None,
            env: dict[str, Any] | None = None, timeout: float = 300.0, check: bool = True
            ) -> subprocess.CompletedProcess:
    """Run ``driftwatch ARGS``; on failure raise with its output."""
    proc = subprocess.run([DRIFTWATCH, *args], cwd=REPO, env=child_env(data_dir, bentoml_home, database_url, env),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"driftwatch {' '.join(args)} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


def private_bentoml_home(shared_home: Path, directory: Path) -> Path:
    """A BENTOML_HOME of its own (metrics dir) that sees the shared model store."""
    directory.mkdir(parents=True, exist_ok=True)
    models = directory / "models"
    if not models.exists():
        (Path(shared_home) / "models").mkdir(parents=True, exist_ok=True)
        models.symlink_to(Path(shared_home) / "models", target_is_directory=True)
    return directory


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # the command name may contain spaces or ')': split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first)."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid``: with the pid, identifies a process (pids are reused)."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, started: int | None = None) -> bool:
    """Running (zombies count as dead); with ``started``, only if it is still that same process."""
    fields = _stat(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class ServiceProcess:
    """``driftwatch serve`` on a free port; use as a context manager or call ``start``/``stop``."""

    def __init__(self, data_dir: Path, bentoml_home: Path, database_url: str | None = None, *,
                 workers: int = 1, env: dict[str, Any] | None = None, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bentoml_home = Path(bentoml_home)
        self.database_url = database_url
        self.workers = workers
        self.extra_env = dict(env or {})
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "serve.log"
        self._starts = 0
        self._seen: dict[int, int | None] = {}  # pid -> start time of every descendant ever collected

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0, wait: bool = True) -> "ServiceProcess":
        """Start; with ``wait=False`` return at once (call ``wait_ready`` later)."""
        self.port = self.port or free_port()
        self._starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {self._starts}: port {self.port} workers {self.workers}\n".encode())
        log.flush()
        args = [DRIFTWATCH, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        env = child_env(self.data_dir, self.bentoml_home, self.database_url, self.extra_env)
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def restart(self, timeout: float = 120.0) -> "ServiceProcess":
        """Start again (same data directory and store) on a fresh port."""
        self.port = None
        return self.start(timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"driftwatch serve exited with {self.proc.returncode}\n{self.log_tail()}")
                try:
                    if c.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"service not ready after {timeout:.0f}s\n{self.log_tail()}")
                time.sleep(0.2)

    def pids(self) -> list[int]:
        """The server and every process it started (workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid, *self._remember(descendants(self.proc.pid))]

    def worker_pids(self) -> list[int]:
        return [p for p in self.pids()[1:] if "_bentoml_impl.worker" in _cmdline(p)]

    def kill9(self, tree: bool = True, timeout: float = 20.0) -> list[int]:
        """``kill -9`` the service's process group (and, ``tree=True``, every descendant).

        Returns the descendants that were found; with ``tree=False`` they are
        left alone (to see what they do when their server dies).
        """
        if self.proc is None:
            return []
        leader = self.proc.pid
        kids: list[int] = []
        if self.proc.poll() is None:
            if tree:
                with _suppress():
                    os.kill(leader, signal.SIGSTOP)  # no respawns while we collect its children
            kids = self._remember(descendants(leader))
            with _suppress():
                os.killpg(leader, signal.SIGKILL)
        if tree:
            own_group = os.getpgid(0)
            kids = sorted(p for p, t in self._seen.items() if alive(p, t))
            for pid in kids:
                with _suppress():
                    group = os.getpgid(pid)
                    if group == pid and group != own_group:  # a worker leads its own group (setsid)
                        os.killpg(group, signal.SIGKILL)
                with _suppress():
                    os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=timeout)
        if tree:
            wait_until(lambda: not any(alive(p, self._seen.get(p)) for p in kids), timeout,
                       "the killed service's processes to die")
        return kids

    def _remember(self, pids: list[int]) -> list[int]:
        out = []
        for p in pids:
            t = start_time(p)
            if t is not None:  # gone already: nothing to remember, nothing to kill
                self._seen.setdefault(p, t)
                out.append(p)
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM: circus stops the workers); kill -9 whatever is left after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._remember(descendants(self.proc.pid))  # so kill9 finds the workers if they hang
            with _suppress():
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()
        self.proc = None

    def __enter__(self) -> "ServiceProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.kill9()

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "--- service log (tail)\n" + "\n".join(lines[-n:])

    # -- HTTP ----------------------------------------------------------------
    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30.0), **kw)

    def metrics(self) -> str:
        r = httpx.get(f"{self.url}/metrics", timeout=30.0)
        r.raise_for_status()
        return r.text


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class _suppress:
    """Ignore 'no such process' (it died already) and permission races."""

    def __enter__(self):
        return self

    def __exit__(self, et, e, tb):
        return et is not None and issubclass(et, (ProcessLookupError, PermissionError))


def prepare_store(database_url: str, model_name: str, model_version: str) -> None:
    """Create the tables and, in a database without one, record the production model."""
    from driftwatch.store import Store

    store = Store(database_url)
    try:
        store.create_all()
        if store.production(model_name) is None:
            store.deploy(model_name, model_version, reason="test setup", actor="tests")
    finally:
        store.dispose()


def new_service(model, data_dir: Path, database_url: str | None = None, *, workers: int = 1,
                env: dict[str, Any] | None = None) -> ServiceProcess:
    """A (not yet started) service serving ``model`` (``.home``, ``.name``, ``.version``: the shared
    model store) from ``database_url`` (default: SQLite in ``data_dir``), with its own BENTOML_HOME."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{data_dir / 'driftwatch.db'}"
    prepare_store(url, model.name, model.version)
    home = private_bentoml_home(model.home, data_dir / "bentoml-home")
    return ServiceProcess(data_dir, home, url, workers=workers, env=env)
