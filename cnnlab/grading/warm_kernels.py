"""Warm kernels: each submission's kernel is forked, with TensorFlow already imported, into that
submission's own bubblewrap sandbox.

A grading kernel used to spend most of its start importing TensorFlow and Keras (about 5 CPU-s,
in every submission, whatever the lab).  A *warm-kernel server* pays that once per batch:

1. The grader starts a template sandbox (the same plan and launcher as a submission's, with a
   ``sleep`` in it instead of a kernel) and a fresh Python (this file, run as a script: nothing
   of cnnlab is imported, and its environment is exactly the kernel's) that enters the
   template's mount namespace and imports what every lab's first cell imports
   (:data:`PRELOAD`), reading the configuration the sandbox shows (``$HOME/.keras``) from where
   the sandbox shows it.  The template is then stopped; the server never runs a submission's
   code and holds no grading material (no solutions, secret or hidden cases: it never read
   them).
2. For each submission the runner starts the sandbox exactly as for a cold kernel (launcher,
   cgroups, rlimits, bubblewrap with its own uid and namespaces), with a ``sleep`` in it as its
   first process, and sends the server descriptors of that sandbox's namespaces, its cgroups'
   ``cgroup.procs`` and the kernel log, opened by the runner (:func:`request_kernel`).
3. The server forks.  The child joins the cgroups, sets the rlimits, enters the sandbox's mount,
   network, IPC, UTS, cgroup and PID namespaces, drops supplementary groups, enters its user
   namespace, becomes the sandbox's uid, drops every capability (bounding, ambient, permitted,
   effective, inheritable) and sets ``no_new_privs``; it then starts the kernel inside the PID
   namespace (a new session, a child of the namespace's init as a cold kernel is) and waits
   for it.  Whatever the kernel does, it does as a cold kernel would: same uid, namespaces,
   files, cgroups and limits.
4. When the kernel ends, the server kills the sandbox's ``sleep`` (through a pidfd), so the
   sandbox ends as a cold one does; when the sandbox is killed from outside, its PID namespace
   takes the kernel with it.

What differs from a cold kernel: the kernel's memory starts as a copy-on-write copy of the
server's (pages it never writes stay charged to the server, not to the submission's cgroup), and
``/proc/self/cmdline`` and ``/proc/self/environ`` show the server's (its environment is the
kernel's).  The server runs as root (it must enter other namespaces), so warm kernels need the
grader to run as root with cgroup v1; elsewhere kernels start cold.  ``--cold-kernels`` turns
them off.  A kernel that cannot be started warm is started cold, and the batch says so.

The lecture idea is running untrusted code; this is the same sandbox, entered by a process
that has already paid for its imports.  Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import sys
import time

__all__ = ["WarmKernels", "WarmKernelError", "request_kernel", "find_stub", "stub_argv",
           "PRELOAD", "NAMESPACES"]

#: What every lab's first cell imports, imported once in the server (each kernel gets it by
#: fork).  Nothing here may configure IPython or pick matplotlib's backend: the kernel does.
PRELOAD = ("numpy", "tensorflow", "keras", "pandas", "PIL.Image", "matplotlib",
           "ipykernel.kernelapp")
#: The namespaces a warm kernel enters, in order (``user`` last: after it, the child has no
#: rights over the others; ``pid`` applies to the kernel it forks).
NAMESPACES = ("mnt", "net", "ipc", "uts", "cgroup", "pid", "user")
_FLAGS = {"mnt": 0x00020000, "cgroup": 0x02000000, "uts": 0x04000000, "ipc": 0x08000000,
          "user": 0x10000000, "pid": 0x20000000, "net": 0x40000000}
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP = 1, 38, 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_READY = b"ready\n"
#: The grader's variables a sandbox's plan reads (its environment, the data it binds): a
#: server serves the batches that agree on them.
_PLAN_ENVIRONMENT = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH", "LANG", "CNNLAB_DATA",
                     "KERAS_HOME", "HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME")


class WarmKernelError(RuntimeError):
    """A warm kernel could not be started (the runner then starts it cold)."""


def stub_argv() -> list[str]:
    """The sandbox's first process while a warm kernel is being forked into it: ``sleep
    infinity`` (coreutils), killed by the server when the kernel ends."""
    import shutil

    path = shutil.which("sleep", path="/usr/bin:/bin")
    if not path:
        raise WarmKernelError("coreutils' sleep is missing; warm kernels need it")
    return [os.path.realpath(path), "infinity"]


# --------------------------------------------------------------------------------------------
# The runner's side (and the grader's, for the template): find the sandbox, send its namespaces


def find_stub(bwrap_pid: int, timeout: float = 20.0) -> int:
    """The pid of the ``sleep`` that bubblewrap (``bwrap_pid``, the launcher's pid) runs in the
    sandbox, once it runs there (every mount and id map of the sandbox is then in place)."""
    from cnnlab.grading.sandbox import process_tree

    stub = stub_argv()[0]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for pid in process_tree(bwrap_pid)[1:]:
            try:
                if os.readlink(f"/proc/{pid}/exe") == stub:
                    return pid
            except OSError:
                pass
        if not os.path.exists(f"/proc/{bwrap_pid}"):
            raise WarmKernelError(f"the sandbox (pid {bwrap_pid}) ended before its first "
                                  f"process started; see the kernel log")
        time.sleep(0.003)
    raise WarmKernelError(f"the sandbox (pid {bwrap_pid}) did not start within {timeout:g} s")


def request_kernel(socket_path: str, bwrap_pid: int, *, argv, uid: int, cwd: str, env: dict,
                   log_fd: int, cgroup_procs=(), rlimit_as: int = 0, rlimit_nproc: int = 0,
                   timeout: float = 30.0) -> int:
    """Ask the server at ``socket_path`` for a kernel (``argv``: ipykernel's arguments, e.g.
    ``["-f", connection file]``) in the sandbox whose bubblewrap is ``bwrap_pid``; its output
    goes to ``log_fd``.  Returns the pid of the server's child that entered the sandbox; raises
    :class:`WarmKernelError` when none could start."""
    stub = find_stub(bwrap_pid)
    opened = []
    try:
        for name in NAMESPACES:
            opened.append(os.open(f"/proc/{stub}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
        opened.append(os.pidfd_open(stub))
        cgroups = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in cgroup_procs]
        opened += cgroups
        request = {"argv": list(argv), "uid": int(uid), "cwd": cwd, "env": dict(env),
                   "rlimit_as": int(rlimit_as), "rlimit_nproc": int(rlimit_nproc),
                   "cgroups": len(cgroups)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(socket_path)
            socket.send_fds(conn, [json.dumps(request).encode()], [*opened, log_fd])
            conn.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
    except OSError as exc:
        raise WarmKernelError(f"the warm-kernel server did not answer: {exc}") from exc
    finally:
        for fd in opened:
            os.close(fd)
    try:
        answer = json.loads(reply)
    except ValueError:
        answer = {"error": f"a malformed answer: {reply[:200]!r}"}
    if "pid" not in answer:
        raise WarmKernelError(f"the warm-kernel server could not start the kernel: "
                              f"{answer.get('error', answer)}")
    return int(answer["pid"])


# --------------------------------------------------------------------------------------------
# The server (this file run as a script, as root, with the kernel's environment)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"warm kernel: {what}: {os.strerror(errno)}")


def _drop_capabilities(libc) -> None:
    """Every capability gone, in every set, as bubblewrap leaves its command."""
    for cap in range(64):  # the bounding set first: dropping it needs CAP_SETPCAP
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
            _check(-1, f"PR_CAPBSET_DROP {cap}")
    _check(libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def _enter(request: dict, fds: dict, libc) -> None:
    """In the server's child, as root: join the sandbox, then become its unprivileged uid."""
    for fd in fds["cgroups"]:
        os.write(fd, str(os.getpid()).encode())
    import resource

    if request["rlimit_as"]:
        resource.setrlimit(resource.RLIMIT_AS, (request["rlimit_as"],) * 2)
    if request["rlimit_nproc"]:
        resource.setrlimit(resource.RLIMIT_NPROC, (request["rlimit_nproc"],) * 2)
    for name in NAMESPACES[:-1]:
        _check(libc.setns(fds[name], _FLAGS[name]), f"setns {name}")
    os.setgroups([])
    _check(libc.setns(fds["user"], _FLAGS["user"]), "setns user")
    uid = request["uid"]
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _drop_capabilities(libc)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


def _kernel(request: dict, log_fd: int, alive: int) -> None:
    """The kernel, inside the sandbox's PID namespace, a child of its init (pid 1) as a cold
    kernel is: what ``python -m ipykernel_launcher`` does, minus the imports already done.
    ``alive``: a pipe's end its parent's waiter reads until every holder has gone."""
    code = 1
    try:
        os.setsid()  # as bwrap --new-session
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, alive)
        os.closerange(alive + 1, 1 << 16)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import ipykernel_launcher

        sys.argv = [ipykernel_launcher.__file__, *request["argv"]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - the kernel's log says why
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _child(request: dict, fds: dict, report_fd: int) -> None:
    """The server's child: enter the sandbox, start the kernel in its PID namespace (through a
    middle process that exits at once, so the kernel's parent is the namespace's init, as a cold
    kernel's is: it cannot signal it), report on ``report_fd`` (``ok`` or the error), then wait
    until the kernel (and whatever it forked) has ended, and end: the server then ends the
    sandbox."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)  # the server's signal plumbing is not the kernel's
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        libc = _libc()
        _enter(request, fds, libc)
        ended, alive = os.pipe()  # (close-on-exec: a program the kernel runs does not hold it)
        middle = os.fork()
        if middle == 0:
            os.close(report_fd)
            os.close(ended)
            if os.fork() == 0:
                _kernel(request, fds["log"], alive)
            os._exit(0)
        os.close(alive)
        os.write(report_fd, b"ok")
        os.close(report_fd)
        os.waitpid(middle, 0)
        os.closerange(0, ended)
        os.closerange(ended + 1, 1 << 16)
        while os.read(ended, 4096):
            pass
        code = 0
    except BaseException as exc:  # noqa: BLE001 - the runner gets it and starts a cold kernel
        try:
            os.write(report_fd, f"{type(exc).__name__}: {exc}".encode()[:2000])
        except OSError:
            pass
    finally:
        os._exit(code)


def _handle(conn: socket.socket, children: dict) -> None:
    """One request: fork the child, answer ``{"pid"}`` once it has forked the kernel, or
    ``{"error"}``."""
    conn.settimeout(10)
    received = []
    try:
        message, received, _, _ = socket.recv_fds(conn, 1 << 20, 64)
        request = json.loads(message)
        n = len(NAMESPACES)
        cgroups = int(request["cgroups"])
        if len(received) != n + 2 + cgroups:
            raise ValueError(f"{len(received)} descriptors, not {n + 2 + cgroups}")
        fds = dict(zip(NAMESPACES, received[:n]))
        fds.update(stub=received[n], cgroups=received[n + 1:n + 1 + cgroups],
                   log=received[-1])
        report_r, report_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            conn.close()
            _child(request, fds, report_w)
        os.close(report_w)
        children[pid] = os.dup(fds["stub"])
        report = b""
        ready, _, _ = select.select([report_r], [], [], 30)
        while ready and (chunk := os.read(report_r, 4096)):
            report += chunk
        os.close(report_r)
        answer = {"pid": pid} if report == b"ok" else {"error": report.decode(errors="replace")
                                                        or "the child ended without a word"}
    except Exception as exc:  # noqa: BLE001 - the runner starts a cold kernel
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in received:
            os.close(fd)
    try:
        conn.sendall(json.dumps(answer).encode())
    except OSError:
        pass


def _reap(children: dict) -> None:
    while children:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        stub = children.pop(pid, None)
        if stub is not None:  # the kernel has ended: so does its sandbox
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(stub, signal.SIGKILL)
            os.close(stub)


def serve(listener_fd: int, mount_fd: int, cwd: str) -> None:
    """The server: enter the template's mount namespace (while still single-threaded), import
    :data:`PRELOAD`, say ``ready`` on stdout, then serve the runners on ``listener_fd`` until
    stdin closes (the grader has gone), when every kernel it started is killed."""
    libc = _libc()
    _check(libc.setns(mount_fd, _FLAGS["mnt"]), "setns mnt (template)")
    os.close(mount_fd)
    os.chdir(cwd)
    # ipykernel sets this before any code of the kernel runs; matplotlib reads it at import
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception as exc:  # noqa: BLE001 - the kernel imports it itself, or fails as cold
            print(f"warm kernels: {name} not preloaded: {exc}", file=sys.stderr, flush=True)
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:  # as `import cnnlab` does in a cold kernel, quietly: a kernel's
        try:  # first operation then prints no device-discovery lines ("failed call to cuInit")
            tensorflow.config.list_physical_devices()
        except Exception:  # noqa: BLE001 - only a log line
            pass
    if "matplotlib_inline.backend_inline" in sys.modules:  # its hooks need the kernel's shell
        raise SystemExit("warm kernels: matplotlib's backend was imported by the preload")
    listener = socket.socket(fileno=listener_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}
    os.write(1, _READY)
    while True:
        try:
            ready, _, _ = select.select([listener, 0, wake_r], [], [], 5)
        except InterruptedError:
            ready = []
        if wake_r in ready:
            os.read(wake_r, 4096)
        if 0 in ready and not os.read(0, 4096):  # the grader has gone: so do the kernels
            for pid, stub in children.items():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(stub, signal.SIGKILL)
            return
        if listener in ready:
            try:
                conn, _ = listener.accept()
            except OSError:
                conn = None
            if conn is not None:
                with conn:
                    _handle(conn, children)
        _reap(children)


# --------------------------------------------------------------------------------------------
# The grader's side: one server per kind of kernel, started once per process


class WarmKernels:
    """The grader's handle on one warm-kernel server: :meth:`socket_path` (waits for it to be
    ready; None when it could not start, and kernels start cold), :meth:`close`.  Use
    :meth:`shared`: one server per kernel environment for every batch this process grades
    (its start, about 6 s, is paid once)."""

    _shared: dict = {}
    _LIMIT = 2  # servers kept at once (each holds TensorFlow, about 0.5 GiB, shared by forks)

    def __init__(self, plan_options: dict):
        import threading

        self._options = plan_options
        self._ready = threading.Event()
        self._socket = None
        self._process = None
        self.problem = ""
        self._folder = None
        threading.Thread(target=self._start, daemon=True, name="cnnlab-warm-kernels").start()

    @classmethod
    def shared(cls, plan_options: dict) -> WarmKernels:
        """The server for kernels planned with ``plan_options`` (the arguments of
        :func:`cnnlab.grading.sandbox.plan_sandbox` but the workdir, uid and hidden folders,
        and ``uids``), started on first use; the oldest is closed beyond two."""
        import atexit

        key = json.dumps({k: v for k, v in plan_options.items() if k != "uids"},
                         sort_keys=True, default=str)
        key += json.dumps({k: os.environ.get(k) for k in _PLAN_ENVIRONMENT})
        server = cls._shared.pop(key, None)
        if server is None or server.problem:
            server = cls(plan_options)
            atexit.register(server.close)
        cls._shared[key] = server  # the most recently used last
        while len(cls._shared) > cls._LIMIT:
            cls._shared.pop(next(iter(cls._shared))).close()
        return server

    @classmethod
    def servers(cls) -> list[WarmKernels]:
        """The shared servers this process has started (the benchmark waits for them before it
        times anything, as it does for the parse server)."""
        return list(cls._shared.values())

    def _start(self) -> None:
        import shutil
        import subprocess
        import tempfile
        from pathlib import Path

        from cnnlab.grading import sandbox as _sandbox

        template, uid, pool = None, None, self._options["uids"]
        try:
            self._folder = Path(tempfile.mkdtemp(prefix="cnnlab-warm-"))
            os.chmod(self._folder, 0o711)  # the template's uid passes through to its folders
            uid = pool.acquire()
            options = {k: v for k, v in self._options.items() if k != "uids"}
            workdir = self._folder / "template"
            workdir.mkdir()
            plan = _sandbox.plan_sandbox(workdir, uid=uid, hidden=(), **options)
            template = subprocess.Popen(_sandbox.kernel_command(plan, stub_argv()),
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        stdout=subprocess.DEVNULL,
                                        stderr=(self._folder / "template.log").open("w"))
            stub = find_stub(template.pid)
            mount = os.open(f"/proc/{stub}/ns/mnt", os.O_RDONLY)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            path = str(self._folder / "server.sock")
            listener.bind(path)
            os.chmod(path, 0o600)  # the runners (the grader's user) alone
            listener.listen(64)
            try:
                self._process = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), str(listener.fileno()),
                     str(mount), plan["cwd"]],
                    env=plan["env"], cwd="/", pass_fds=(listener.fileno(), mount),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=(self._folder / "server.log").open("w"), start_new_session=True)
            finally:
                listener.close()
                os.close(mount)
            ready, _, _ = select.select([self._process.stdout], [], [], 300)
            line = self._process.stdout.readline() if ready else b""
            if line != _READY:
                log = (self._folder / "server.log").read_text(errors="replace")[-2000:]
                raise WarmKernelError(f"the server did not start: {log.strip() or 'no log'}")
            self._socket = path
        except Exception as exc:  # noqa: BLE001 - kernels then start cold, and the batch says so
            self.problem = f"{type(exc).__name__}: {exc}"
            if self._process is not None:
                self._process.kill()
        finally:
            if template is not None:
                os.killpg(template.pid, signal.SIGKILL)
                template.wait()
                shutil.rmtree(workdir, ignore_errors=True)
            if uid is not None:
                pool.release(uid)
            self._ready.set()

    @property
    def pid(self) -> int | None:
        """The server's pid (None before it starts or after :meth:`close`)."""
        return self._process.pid if self._process is not None else None

    def socket_path(self, timeout: float = 300.0) -> str | None:
        """The server's socket once it is ready; None when it could not start
        (:attr:`problem` says why)."""
        self._ready.wait(timeout)
        return self._socket

    def close(self) -> None:
        """Stop the server: it kills every kernel it started."""
        import shutil

        self._ready.wait(300)
        process, self._process, self._socket = self._process, None, None
        if process is not None:
            try:
                process.stdin.close()
                process.wait(10)
            except Exception:  # noqa: BLE001 - then it is killed
                process.kill()
                process.wait()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


if __name__ == "__main__":
    del sys.path[0]  # this file's folder: the kernel's imports must resolve as a kernel's do
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
