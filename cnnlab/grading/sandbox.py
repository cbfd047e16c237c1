"""A sandbox per submission: the kernel runs inside bubblewrap, limited as a whole.

The grader (trusted) prepares a plan for each submission (:func:`plan_sandbox`): a private copy of
the lab's working folder, a folder for the kernel's ZeroMQ sockets (``transport="ipc"``: the
sandbox has no network, not even loopback), a uid of its own, and where the machine offers them
a cgroup v1 ``memory`` and ``pids`` group (:class:`Cgroups`).  The runner (trusted, outside the
sandbox) starts the kernel through :func:`kernel_command`: a small launcher (this file run as a
script, standard library only, so it starts in milliseconds) that, still as the grader's user,
joins the cgroups, sets the rlimits, opens the data folders the kernel may read, then drops to the
sandbox's uid and execs ``bwrap``.  Inside, the kernel has:

- its own uid (65534 by default; ``--sandbox-uid`` gives a range), no capabilities, its own
  user, PID, network, IPC and UTS namespaces (``--unshare-all``), no further user namespaces;
- as working directory ``/tmp/lab`` (:data:`SANDBOX_CWD`): its private copy of the lab's
  folder, never the kit's own folder beside ``solutions/``;
- the whole file system read-only, with ``/tmp``, ``$HOME`` (``/tmp/home``), ``/home``,
  ``/root``, ``/run`` and the folders holding the submissions and ``--out`` replaced by empty
  private tmpfs, ``solutions/`` hidden by an empty tmpfs, and writable only: its own copy of the
  lab's working folder and its socket folder (its answers leave on the kernel's message
  stream, never as files);
- a minimal environment (PATH, HOME, LANG, CNNLAB_PROFILE, and KERAS_BACKEND,
  TF_CPP_MIN_LOG_LEVEL, PYTHONPATH, CNNLAB_DATA when the grader has them);
- ``--die-with-parent``: when its runner dies, so does every process it started, new session or
  not (the PID namespace ends with its first process), and the grader kills the cgroup's
  processes (or the sandbox's first process) from outside at the end.

Where the grader is root with cgroup v1, the kernel is usually not exec'd in the sandbox but
forked into it, TensorFlow already imported (:mod:`cnnlab.grading.warm_kernels`): bwrap then runs
``sleep`` as the sandbox's first process, and the same plan, launcher, uid, cgroups and limits
apply.

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import stat
import sys
import threading
import time
from pathlib import Path

__all__ = ["SANDBOX_CWD", "SandboxUnavailable", "require_bubblewrap", "Cgroups",
           "cgroups_available",
           "UidPool", "plan_sandbox", "kernel_command", "kernel_env", "process_tree",
           "tree_rss_bytes", "kill_tree", "LIMITS_CGROUP", "LIMITS_RLIMIT"]

LIMITS_CGROUP = "cgroup-v1"  # memory and pids of the submission as a whole
LIMITS_RLIMIT = "rlimit"  # per process: RLIMIT_AS (and RLIMIT_NPROC with a uid of its own)

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_SANDBOX_HOME = "/tmp/home"
#: The kernel's working directory inside the sandbox: its private copy of the lab's folder, on
#: the sandbox's own /tmp, far from the kit (and from ``solutions/``, hidden anyway).
SANDBOX_CWD = "/tmp/lab"
# Hidden behind an empty tmpfs in every sandbox (what is needed under them is bound back).
_HIDDEN = ("/home", "/root", "/run", "/var/tmp", "/mnt", "/media", "/srv")
_ENV_PASSED = ("LANG", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")


class SandboxUnavailable(ValueError):
    """The sandbox cannot run here; the message says what to install or which flag to use."""


def require_bubblewrap() -> str:
    """The path of ``bwrap``, or :class:`SandboxUnavailable` naming the package and the flag."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and every submission's kernel runs inside it: "
            "install the Debian package `bubblewrap` (apt-get install bubblewrap), or grade "
            "without a sandbox with --no-sandbox (only for submissions you trust: the student's "
            "code then runs with your rights)")
    return path


# --------------------------------------------------------------------------------------------
# cgroup v1: memory and pids for the submission as a whole


def _own_cgroup(controller: str) -> Path:
    """The folder of this process's own cgroup for ``controller`` (new groups go under it, so
    the machine's own limits still hold), or the hierarchy's root."""
    root = _CGROUP_ROOT / controller
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                candidate = root / path.lstrip("/")
                if candidate.is_dir() and os.access(candidate, os.W_OK):
                    return candidate
    except (OSError, ValueError):
        pass
    return root


def cgroups_available() -> bool:
    """True when this process can make cgroup v1 ``memory`` and ``pids`` groups (root, with
    both controllers mounted and writable)."""
    if os.geteuid() != 0:
        return False
    return all((_own_cgroup(c) / "cgroup.procs").exists() and os.access(_own_cgroup(c), os.W_OK)
               for c in ("memory", "pids"))


class Cgroups:
    """One submission's ``memory`` and ``pids`` groups: :meth:`create`, hand :attr:`procs` to
    the launcher, :meth:`memory_exceeded` while it runs, :meth:`kill_all` and :meth:`remove`."""

    _count = itertools.count()

    def __init__(self, max_memory: int, max_processes: int):
        name = f"cnnlab-{os.getpid()}-{next(self._count)}"
        self.paths = {c: _own_cgroup(c) / name for c in ("memory", "pids")}
        self.max_memory, self.max_processes = int(max_memory), int(max_processes)

    def create(self) -> Cgroups:
        for path in self.paths.values():
            path.mkdir()
        memory = self.paths["memory"]
        if self.max_memory:
            (memory / "memory.limit_in_bytes").write_text(str(self.max_memory))
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # no swapping around the limit
                try:
                    memsw.write_text(str(self.max_memory))
                except OSError:
                    pass
        (self.paths["pids"] / "pids.max").write_text(str(self.max_processes))
        return self

    @property
    def procs(self) -> list[str]:
        """The ``cgroup.procs`` files the launcher writes its pid to."""
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def pids(self) -> set[int]:
        found = set()
        for path in self.paths.values():
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def memory_exceeded(self) -> bool:
        """True once the kernel's OOM killer has acted in the memory group (the submission as
        a whole reached ``--max-memory``)."""
        try:
            text = (self.paths["memory"] / "memory.oom_control").read_text()
        except OSError:
            return False
        fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return fields.get("oom_kill", "0") != "0" or fields.get("under_oom", "0") != "0"

    def peak_memory(self) -> int:
        try:
            return int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())
        except (OSError, ValueError):
            return 0

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the groups until none is left (a process forking while it
        is killed is caught on the next round)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy: a killed process is still leaving
                    time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Uids, process trees


class UidPool:
    """The uids sandboxes run as: ``first..last``; each running submission takes a free one
    (when there are more jobs than uids, they share)."""

    def __init__(self, first: int = 65534, last: int | None = None):
        last = first if last is None else last
        if not 0 < first <= last:
            raise ValueError(f"sandbox uids {first}-{last}: give FIRST[-LAST] with "
                             "0 < FIRST <= LAST, e.g. 65534 or 200000-200063")
        self.first, self.last = first, last
        self._busy: dict[int, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text) -> UidPool:
        """``"65534"`` or ``"200000-200063"`` (``--sandbox-uid``)."""
        first, _, last = str(text).partition("-")
        try:
            return cls(int(first), int(last) if last else None)
        except ValueError as exc:
            raise ValueError(f"--sandbox-uid {text!r}: {exc}") from None

    def acquire(self) -> int:
        with self._lock:
            uid = min(range(self.first, self.last + 1), key=lambda u: self._busy.get(u, 0))
            self._busy[uid] = self._busy.get(uid, 0) + 1
            return uid

    def release(self, uid: int) -> None:
        with self._lock:
            self._busy[uid] = self._busy.get(uid, 1) - 1


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from ``/proc``; a process that left its parent for
    the sandbox's first process is still below the sandbox)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and every process below it, together."""
    return sum(_rss(p) for p in process_tree(pid))


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every process below ``pid``."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in process_tree(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------------------------
# The plan of one sandbox (grader side) and the kernel's command (runner side)


def kernel_env(profile: str, home: str, environ=None) -> dict:
    """The kernel's whole environment: PATH, HOME, LANG, CNNLAB_PROFILE, and the grader's
    KERAS_BACKEND, TF_CPP_MIN_LOG_LEVEL, PYTHONPATH and CNNLAB_DATA when set.  Nothing says
    the kernel is being graded."""
    environ = os.environ if environ is None else environ
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
           "HOME": home, "LANG": "C.UTF-8", "CNNLAB_PROFILE": profile}
    env.update({k: environ[k] for k in (*_ENV_PASSED, "CNNLAB_DATA") if environ.get(k)})
    return env


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def plan_sandbox(workdir: Path, *, cwd: Path, kit: Path, solutions: Path, hidden, uid: int,
                 profile: str, bwrap: str, cgroup_procs=(), rlimit_as: int = 0,
                 rlimit_nproc: int = 0, tmpfs_mb: int = 1024) -> dict:
    """Everything the launcher needs to start one submission's kernel in its sandbox, as plain
    data (the runner passes it to :func:`kernel_command`).  Makes the private copy of ``cwd``
    (its files, notebooks left out) and the socket folder under ``workdir``, owned by ``uid``.
    ``hidden``: the folders of the submissions and ``--out``."""
    sandbox = workdir / "sandbox"
    private_cwd, sockets = sandbox / "cwd", sandbox / "sockets"
    sandbox.mkdir()
    shutil.copytree(cwd, private_cwd, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n.endswith(".ipynb")])
    sockets.mkdir(mode=0o700)
    for path in (private_cwd, sockets) if os.geteuid() == 0 else ():
        for folder, _, files in os.walk(path):  # (as any other user, bwrap maps the uid)
            os.chown(folder, uid, uid)
            for name in files:
                os.lchown(os.path.join(folder, name), uid, uid)
    needed = {str(kit), sys.prefix, sys.base_prefix, str(Path(sys.executable).parent)}
    needed |= {p for p in os.environ.get("PYTHONPATH", "").split(":") if p and os.path.isdir(p)}
    hide = sorted({str(Path(h).resolve()) for h in (*_HIDDEN, *hidden)} - {"/"},
                  key=lambda p: p.count("/"))
    hide = [h for h in hide if not _under(h, "/tmp") and os.path.isdir(h)]
    # the sandbox's /tmp is a private tmpfs: what it needs there (a kit cloned under /tmp, as CI
    # does) is bound back, and the submissions or --out inside it are hidden again
    tmp_expose = sorted(n for n in needed if _under(n, "/tmp") and os.path.isdir(n))
    tmp_hide = sorted(h for h in {str(Path(h).resolve()) for h in hidden}
                      if os.path.isdir(h) and any(_under(h, n) for n in tmp_expose))
    # data the labs read, bound read-only from descriptors the launcher opens as the grader
    # (the sandbox's uid may not be able to reach them, e.g. under /root)
    data = []
    keras = _keras_home()
    for name in ("datasets", "models", "cnnlab-features", "keras.json"):
        if (keras / name).exists():
            data.append([str(keras / name), f"{_SANDBOX_HOME}/.keras/{name}"])
    cnnlab_data = os.environ.get("CNNLAB_DATA")
    if cnnlab_data and os.path.isdir(cnnlab_data):
        data.append([cnnlab_data, cnnlab_data])
    try:
        import matplotlib  # its font list, so that each kernel does not rebuild it

        fonts = sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))
        data += [[str(f), f"{_SANDBOX_HOME}/.cache/matplotlib/{f.name}"] for f in fonts]
    except Exception:  # noqa: BLE001 - only a start-up cost when it is missing
        pass
    env = kernel_env(profile, _SANDBOX_HOME)
    env["MPLCONFIGDIR"] = f"{_SANDBOX_HOME}/.cache/matplotlib"
    staging = sandbox / "data"  # where the launcher binds the data for bwrap to bind again
    staging.mkdir()
    os.chmod(workdir, 0o711)  # the sandbox's uid passes through to its own folders only
    os.chmod(sandbox, 0o711)
    return {
        "bwrap": bwrap, "staging": str(staging), "uid": uid, "cwd": SANDBOX_CWD,
        "private_cwd": str(private_cwd),
        "solutions": str(solutions), "sockets": str(sockets),
        "hide": hide, "expose": sorted(needed), "data": data, "env": env,
        "tmp_expose": tmp_expose, "tmp_hide": tmp_hide,
        "cgroup_procs": list(cgroup_procs), "rlimit_as": int(rlimit_as),
        "rlimit_nproc": int(rlimit_nproc), "tmpfs_bytes": int(tmpfs_mb) * 2**20,
    }


def kernel_command(plan: dict | None, kernel_argv: list[str], *, cgroup_procs=(),
                   rlimit_as: int = 0) -> list[str]:
    """The command that starts a kernel (``kernel_argv``, e.g. ``[python, -m,
    ipykernel_launcher, -f, connection file]``): through the launcher, in the sandbox ``plan``
    (None: no sandbox, only the cgroups and rlimits)."""
    spec = plan or {"cgroup_procs": list(cgroup_procs), "rlimit_as": int(rlimit_as)}
    return [sys.executable, "-I", "-S", str(Path(__file__).resolve()), json.dumps(spec),
            *kernel_argv]


def _exposed(plan: dict) -> list[str]:
    """The needed folders (kit, venv, Python) that lie under a hidden one: bound back."""
    return [n for n in plan["expose"] if any(_under(n, h) for h in plan["hide"])]


def _hidden_again(plan: dict, exposed) -> list[str]:
    """Hidden folders inside a folder bound back (``--out`` inside the kit): hidden again."""
    return [h for h in plan["hide"] if any(_under(h, n) and h != n for n in exposed)]


def _private_mounts(plan: dict) -> list[list[str]]:
    """As root, before dropping to the sandbox's uid: a mount namespace of the launcher's own
    where the hidden folders are empty tmpfs, the needed folders under them are bound back and
    the data folders are bound on staging paths the sandbox's uid can reach (the kit's Python
    or the data may live under ``/root``, which that uid cannot enter).  Returns the data binds
    for bwrap, from the staging paths."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def call(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"sandbox launcher: {what}: {os.strerror(errno)}")

    def bind(fd: int, target: str) -> None:
        call(libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None,
                        0x1000 | 0x4000, None), f"bind {target}")  # MS_BIND | MS_REC

    def tmpfs(target: str) -> None:
        call(libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0,
                        f"mode=755,size={plan['tmpfs_bytes']}".encode()), f"tmpfs {target}")

    call(libc.unshare(0x20000), "unshare(CLONE_NEWNS)")
    call(libc.mount(b"none", b"/", None, 0x4000 | (1 << 18), None), "make / private")
    exposed = _exposed(plan)  # opened in the new namespace, before anything is hidden
    fds = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in exposed}
    data = [(os.open(source, os.O_PATH | os.O_CLOEXEC), source, target)
            for source, target in plan["data"]]
    for h in plan["hide"]:
        tmpfs(h)
    for n in exposed:
        os.makedirs(n, exist_ok=True)
        bind(fds[n], n)
    for h in _hidden_again(plan, exposed):
        tmpfs(h)
    binds = []
    staging = Path(plan["staging"])
    for i, (fd, source, target) in enumerate(data):
        stage = staging / str(i)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            stage.mkdir(exist_ok=True)  # (a restarted kernel launches again)
        else:
            stage.touch()
        bind(fd, str(stage))
        binds.append([str(stage), target])
    return binds


def _bwrap_argv(plan: dict, kernel_argv: list[str], data_binds=None) -> list[str]:
    """bwrap's command line.  ``data_binds``: the data binds when :func:`_private_mounts` has
    already hidden what must be hidden (root); None to let bwrap hide it (any other user)."""
    size = ["--size", str(plan["tmpfs_bytes"])]
    argv = [plan["bwrap"], "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--uid", str(plan["uid"]),
            "--gid", str(plan["uid"]), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            *size, "--tmpfs", "/tmp"]
    if data_binds is None:
        exposed = _exposed(plan)
        for h in plan["hide"]:
            argv += [*size, "--tmpfs", h]
        for n in exposed:
            argv += ["--ro-bind", n, n]
        for h in _hidden_again(plan, exposed):
            argv += [*size, "--tmpfs", h]
        data_binds = plan["data"]
    for n in plan.get("tmp_expose", ()):
        argv += ["--ro-bind", n, n]
    for h in plan.get("tmp_hide", ()):  # empty and read-only, as hidden folders are elsewhere
        argv += [*size, "--tmpfs", h, "--remount-ro", h]
    argv += ["--tmpfs", plan["solutions"], "--remount-ro", plan["solutions"]]
    argv += ["--bind", plan["private_cwd"], plan["cwd"],
             "--bind", plan["sockets"], plan["sockets"], "--dir", _SANDBOX_HOME]
    for source, target in data_binds:
        argv += ["--ro-bind", source, target]
    argv += ["--clearenv"]
    for key, value in plan["env"].items():
        argv += ["--setenv", key, value]
    return argv + ["--chdir", plan["cwd"], "--", *kernel_argv]


def _launch(spec: dict, kernel_argv: list[str]) -> None:
    """The launcher: join the cgroups, set the rlimits, drop to the sandbox's uid, exec."""
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    if spec.get("rlimit_as"):
        resource.setrlimit(resource.RLIMIT_AS, (spec["rlimit_as"], spec["rlimit_as"]))
    if "bwrap" not in spec:
        os.execv(kernel_argv[0], kernel_argv)
    if "-f" in kernel_argv:  # the connection file, readable by the kernel only
        os.chown(kernel_argv[kernel_argv.index("-f") + 1], spec["uid"], spec["uid"])
    if os.geteuid() == 0:
        argv = _bwrap_argv(spec, kernel_argv, _private_mounts(spec))
        if spec.get("rlimit_nproc"):
            resource.setrlimit(resource.RLIMIT_NPROC, (spec["rlimit_nproc"],) * 2)
        os.setgroups([])
        os.setresgid(spec["uid"], spec["uid"], spec["uid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    else:
        argv = _bwrap_argv(spec, kernel_argv)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    _launch(json.loads(sys.argv[1]), sys.argv[2:])
