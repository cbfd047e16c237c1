"""The sandbox each submission's kernel runs in (issue 13, section 2): what a submission and the
processes it starts can no longer do.

Most tests run a tiny notebook (no TensorFlow: the kernel starts in a second or two) through the
grader's own run step (``_run_sandboxed``: the runner outside, the kernel in bubblewrap, the
cgroups); one batch grades Lab 01 end to end.  The folders the grader reads from and writes to
sit outside ``/tmp`` (under the kit's ``results/``), so hiding them is tested, not just the
private ``/tmp``.
"""

import hashlib
import importlib
import io
import json
import os
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest

from cnnlab.cli import main as cli_main
from cnnlab.exercise import LABS
from cnnlab.grading import grade
from cnnlab.grading import sandbox
from cnnlab.grading.limits import Limits
from cnnlab.grading.warm_kernels import WarmKernels
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each test runs submissions in sandboxed kernels (seconds each)

grade_module = importlib.import_module("cnnlab.grading.grade")  # the module, not grade()
LAB01 = ROOT / "solutions" / f"{LABS['01']}.ipynb"
SANDBOX_UID = 65534

needs_sandbox = pytest.mark.skipif(
    shutil.which("bwrap") is None or not sandbox.cgroups_available(),
    reason="needs bubblewrap and root with cgroup v1 memory/pids (CI installs bubblewrap)")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _uid_processes(uid: int, wait: float = 3.0) -> list[int]:
    """Processes of ``uid`` still running (zombies, already dead, only wait to be reaped)."""
    end = time.monotonic() + wait
    while True:
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                    state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry))
            except (OSError, IndexError):
                pass
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Folders of the host, outside /tmp: the submissions, --out, a marker folder; and a file in
    the host's /tmp."""
    (ROOT / "results").mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir=ROOT / "results"))
    base.chmod(0o755)  # as readable as a course folder: only the sandbox hides what is in it
    folders = {name: base / name for name in ("subs", "out", "markers")}
    for folder in folders.values():
        folder.mkdir()
    (folders["subs"] / "other_student.ipynb").write_text("{}")
    host_tmp = tmp_path_factory.mktemp("host-tmp")
    yield {**folders, "base": base, "tmp": host_tmp}
    shutil.rmtree(base, ignore_errors=True)


#: Every attack below runs against both ways a kernel starts: afresh in its sandbox (cold), and
#: forked with TensorFlow already imported into that same sandbox (warm, the default as root).
KERNELS = ("cold", "warm")


def _warm_server(**changes) -> WarmKernels:
    """The warm-kernel server ``grade()`` uses for this kit (shared: started once)."""
    plan = {"cwd": ROOT / "labs", "kit": ROOT, "solutions": ROOT / "solutions",
            "profile": "smoke", "bwrap": shutil.which("bwrap"),
            "uids": sandbox.UidPool(SANDBOX_UID)}
    return WarmKernels.shared({**plan, **changes})


def _options(host, kernels="cold", **extra) -> dict:
    options = {"timeout_cell": 30, "timeout_notebook": 60, "profile": "smoke",
               "cwd": str(ROOT / "labs"), "keep_executed": True, "max_output_bytes": 10_000,
               "limits_mode": sandbox.LIMITS_CGROUP, "max_memory": 2**30, "max_processes": 64,
               "sandbox": True, "uids": sandbox.UidPool(SANDBOX_UID), "kit": str(ROOT),
               "solutions": str(ROOT / "solutions"), "bwrap": shutil.which("bwrap"),
               "hidden": [str(host["subs"]), str(host["out"])]}
    if kernels == "warm":
        options["warm"] = _warm_server()
    options.update(extra)
    return options


def _run(cells, options):
    """Run ``cells`` (sources) as the grader runs a submission: ``(outcome, progress, outputs
    of each cell as text)``."""
    workdir = Path(tempfile.mkdtemp(prefix="cnnlab-grade-"))
    try:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
        nbformat.write(nb, workdir / "submission.ipynb")
        outcome = grade_module._run_sandboxed(workdir, options, Limits())
        progress, problem = grade_module._read_progress(outcome.lines, Limits())
        assert not problem
        if options.get("warm") and isinstance(options["warm"], WarmKernels):
            assert not any(line.startswith(b'{"cold"') for line in outcome.lines), outcome.lines
        texts = []
        if (workdir / "executed.ipynb").exists():  # not when the runner was stopped
            executed = nbformat.read(workdir / "executed.ipynb", as_version=4)
            texts = ["".join(o.get("text", "") for o in c.outputs) for c in executed.cells]
        return outcome, progress, texts
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Without bubblewrap: a clear stop, or --no-sandbox with a warning


def test_without_bubblewrap_grading_stops_before_it_starts_naming_the_package_and_flag(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a.ipynb").write_text(LAB01.read_text())
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap") as error:
        grade("01", [tmp_path / "subs"], out=tmp_path / "out")
    assert "--no-sandbox" in str(error.value)
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
    status = cli_main(["grade", "--lab", "01", str(tmp_path / "subs"), "--out",
                       str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "`bubblewrap`" in err and "--no-sandbox" in err


def test_no_sandbox_grades_with_a_warning_and_says_so_in_scores_json(tmp_path):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "cut.ipynb").write_text(LAB01.read_text()[:500])  # no kernel needed
    log = io.StringIO()
    (row,) = grade("01", [tmp_path / "subs"], out=tmp_path / "out", sandbox=False, stream=log)
    assert row.status == "unreadable"
    assert "WARNING: --no-sandbox" in log.getvalue()
    (entry,) = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert entry["sandbox"] == "none" and entry["limits"] in ("cgroup-v1", "rlimit")


def test_the_uid_range_is_parsed_and_shared_out():
    pool = sandbox.UidPool.parse("200000-200001")
    first, second = pool.acquire(), pool.acquire()
    assert {first, second} == {200000, 200001}
    pool.release(first)
    assert pool.acquire() == first
    with pytest.raises(ValueError, match="--sandbox-uid"):
        sandbox.UidPool.parse("0")


# --------------------------------------------------------------------------------------------
# Inside: one small kernel tries everything a submission could


ESCAPE = '''
import os, subprocess, sys, time
MARKERS = {markers!r}
loop = ("import os, time\\n"
        "for i in range(50):\\n"
        "    for d in {targets!r}:\\n"
        "        try:\\n"
        "            open(os.path.join(d, f'marker-{{os.getpid()}}-{{i}}'), 'w').write('x')\\n"
        "        except OSError:\\n"
        "            pass\\n"
        "    time.sleep(0.2)\\n")
subprocess.Popen([sys.executable, "-c", loop], start_new_session=True)
subprocess.Popen(["nohup", sys.executable, "-c", loop], stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
if os.fork() == 0:  # a double fork: the grandchild belongs to nobody
    if os.fork() == 0:
        os.setsid()
        os.execv(sys.executable, [sys.executable, "-c", loop])
    os._exit(0)
os.wait()
time.sleep(1)
print("started")
'''


@pytest.fixture(scope="module", params=KERNELS)
def probed(host, request):
    """One sandboxed run of a notebook that probes the network, reads what it must not, writes
    where it must not and leaves processes behind writing markers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    accepted = []

    def serve():
        end = time.monotonic() + 60
        while time.monotonic() < end and not accepted:
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    port = server.getsockname()[1]
    kit_file = ROOT / "cnnlab" / "grading" / "export.py"
    solution = ROOT / "solutions" / LAB01.name
    host_tmp_file = host["tmp"] / "grader-file.txt"
    host_tmp_file.write_text("the grader's")
    before = {"kit": _sha(kit_file), "solution": _sha(solution), "tmp": _sha(host_tmp_file)}
    targets = [str(host["markers"]), str(host["subs"]), str(host["out"]), str(host["tmp"]),
               str(ROOT / "solutions"), str(ROOT / "cnnlab"), "/tmp", "."]
    os.environ["CNNLAB_TEST_SECRET"] = "grader-only"
    os.environ["CNNLAB_GRADING_SECRET"] = "the course secret, never in a kernel"
    cells = [
        # the network: a TCP server on the host's loopback
        f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3)
            print("network: connected")
        except OSError as exc:
            print("network:", type(exc).__name__)
        """,
        # reading: the solutions, the grader's command line, the submissions, the environment
        f"""
        import json, os
        seen = {{}}
        for name, path in [("solution", "../solutions/{LAB01.name}"),
                           ("solution_abs", "{solution}"),
                           ("cmdline", "/proc/{os.getpid()}/cmdline"),
                           ("submission", "{host['subs']}/other_student.ipynb")]:
            try:
                seen[name] = len(open(path, "rb").read())
            except OSError as exc:
                seen[name] = type(exc).__name__
        try:
            seen["subs_listing"] = os.listdir("{host['subs']}")
        except OSError as exc:
            seen["subs_listing"] = type(exc).__name__
        try:  # SIGKILL to the grader (once, `cnnlab grade` died with exit 137 here)
            os.kill({os.getpid()}, 9)
            seen["kill_grader"] = "sent"
        except OSError as exc:
            seen["kill_grader"] = type(exc).__name__
        seen["env"] = sorted(os.environ)
        seen["cwd"] = os.getcwd()
        seen["uid"] = os.getuid()
        print(json.dumps(seen))
        """,
        # writing: into the kit, the solutions, the submissions, --out, the host's /tmp
        f"""
        import json
        results = {{}}
        for name, path in [("kit", "{kit_file}"), ("solution", "{solution}"),
                           ("subs", "{host['subs']}/x.ipynb"), ("out", "{host['out']}/scores.csv"),
                           ("tmp", "{host_tmp_file}"), ("labs", "written_here.txt")]:
            try:
                with open(path, "a") as f:
                    f.write("attack")
                results[name] = "written"
            except OSError as exc:
                results[name] = type(exc).__name__
        print(json.dumps(results))
        """,
        ESCAPE.format(markers=str(host["markers"]), targets=targets),
        "print('x' * 50_000)",  # over the 10 kB cap
    ]
    outcome, progress, texts = _run(cells, _options(host, request.param))
    grader_env = set(os.environ)
    del os.environ["CNNLAB_TEST_SECRET"]
    del os.environ["CNNLAB_GRADING_SECRET"]
    time.sleep(1.5)  # anything that survived would write again by now
    server.close()
    return {"outcome": outcome, "progress": progress, "texts": texts, "before": before,
            "kit_file": kit_file, "solution": solution, "host_tmp_file": host_tmp_file,
            "accepted": accepted, "host": host, "grader_env": grader_env}


@needs_sandbox
def test_a_submission_cannot_reach_the_network(probed):
    assert probed["texts"][0].strip() in ("network: OSError", "network: ConnectionRefusedError")
    assert probed["accepted"] == []


@needs_sandbox
def test_a_submission_cannot_read_solutions_or_other_submissions_nor_reach_the_grader(
        probed):
    seen = json.loads(probed["texts"][1])
    assert seen["solution"] == "FileNotFoundError"  # solutions/ is an empty folder inside
    assert seen["solution_abs"] == "FileNotFoundError"
    assert seen["cwd"] == sandbox.SANDBOX_CWD  # a private copy, far from the kit's solutions/
    assert seen["cmdline"] == "FileNotFoundError"  # the grader is not in its PID namespace
    assert seen["submission"] == "FileNotFoundError" and seen["subs_listing"] == []
    assert seen["kill_grader"] == "ProcessLookupError"  # and this process is still here
    assert seen["uid"] == SANDBOX_UID
    assert "CNNLAB_TEST_SECRET" not in seen["env"] and "CNNLAB_GRADING" not in seen["env"]
    assert "CNNLAB_GRADING_SECRET" not in seen["env"]
    passed = {"PATH", "HOME", "LANG", "CNNLAB_PROFILE", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL",
              "PYTHONPATH", "CNNLAB_DATA"}
    ipykernel_sets = {"TERM", "PAGER", "GIT_PAGER", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR",
                      "MPLBACKEND", "PYDEVD_USE_FRAME_EVAL", "PWD"}
    assert set(seen["env"]) & set(probed["grader_env"]) <= passed | ipykernel_sets


@needs_sandbox
def test_a_submission_cannot_write_outside_its_sandbox(probed):
    written = json.loads(probed["texts"][2])
    assert written["labs"] == "written"  # its own copy of the lab's folder
    assert "written" not in {v for k, v in written.items() if k != "labs"}, written
    assert _sha(probed["kit_file"]) == probed["before"]["kit"]
    assert _sha(probed["solution"]) == probed["before"]["solution"]
    assert probed["host_tmp_file"].read_text() == "the grader's"
    assert not (ROOT / "labs" / "written_here.txt").exists()
    host = probed["host"]
    assert sorted(p.name for p in host["subs"].iterdir()) == ["other_student.ipynb"]
    assert list(host["out"].iterdir()) == [] and list(host["markers"].iterdir()) == []


@needs_sandbox
def test_processes_a_submission_starts_do_not_survive_it(probed):
    assert probed["texts"][3].strip() == "started"
    host = probed["host"]
    assert list(host["markers"].iterdir()) == []
    assert [p for p in host["tmp"].iterdir() if p.name.startswith("marker")] == []
    assert _uid_processes(SANDBOX_UID) == []  # nothing of the sandbox's uid is left
    assert probed["outcome"].ended == "finished"
    assert probed["progress"]["end"] == "finished"


@needs_sandbox
def test_output_over_the_cap_is_dropped_with_a_note(probed):
    text = probed["texts"][4]
    assert len(text) < 11_000
    assert "[output truncated by the grader: 40001 bytes dropped]" in text
    assert grade_module._truncations(probed["outcome"].lines, Limits()) == {4: 40001}


# --------------------------------------------------------------------------------------------
# Limits of the submission as a whole


@needs_sandbox
@pytest.mark.parametrize("kernels", KERNELS)
def test_a_child_allocating_over_max_memory_stops_the_whole_submission(host, kernels):
    child = ("import subprocess, sys\n"
             "subprocess.run([sys.executable, '-c', 'b = bytearray(3 * 2**29); "
             "b[::4096] = b\"x\" * len(b[::4096]); import time; time.sleep(30)'])\n")
    outcome, progress, _ = _run([child, "print('after')"], _options(host, kernels))
    assert outcome.ended == "memory"  # 1.5 GiB in a child, against 1 GiB for the submission
    assert _uid_processes(SANDBOX_UID) == []


@needs_sandbox
@pytest.mark.parametrize("kernels", KERNELS)
def test_a_fork_bomb_is_stopped_by_the_process_limit(host, kernels):
    bomb = """
    import os, time
    n = 0
    try:
        while n < 10_000:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            n += 1
    except OSError as exc:
        print("stopped after", n, type(exc).__name__)
    """
    outcome, progress, texts = _run([bomb], _options(host, kernels, max_processes=48))
    words = texts[0].split()
    assert words[:2] == ["stopped", "after"] and int(words[2]) < 48
    assert outcome.ended == "finished"
    assert _uid_processes(SANDBOX_UID) == []


# --------------------------------------------------------------------------------------------
# A real lab, end to end


@pytest.fixture(scope="module")
def lab01_sandboxed(host):
    """Lab 01 graded with the sandbox on: its solution, and a submission whose first exercise
    copies the reference from the solutions notebook (which the kernel cannot read)."""
    subs = host["base"] / "lab01-subs"
    subs.mkdir()
    (subs / "solution.ipynb").write_text(LAB01.read_text())
    nb = nbformat.read(LAB01, as_version=4)
    cell = next(c for c in nb.cells if "exercise:01.correlate2d" in c.metadata.get("tags", []))
    cell.source = (f"import json\nnb = json.load(open('../solutions/{LAB01.name}'))\n"
                   "exec(next(''.join(c['source']) for c in nb['cells'] if "
                   "'exercise:01.correlate2d' in c['metadata'].get('tags', [])))\n")
    nbformat.write(nb, subs / "copier.ipynb")
    out = host["base"] / "lab01-out"
    log = io.StringIO()
    results = grade("01", [subs], out=out, jobs=2, timeout_cell=60, timeout_notebook=300,
                    stream=log)
    return {r.submission: r for r in results}, out, log.getvalue()


@needs_sandbox
def test_a_lab_graded_in_the_sandbox_scores_as_before_and_says_how(lab01_sandboxed):
    rows, out, log = lab01_sandboxed
    assert rows["solution"].status == "graded"
    assert rows["solution"].total == rows["solution"].max_total
    assert "sandbox: bubblewrap; limits: cgroup-v1" in log
    entries = json.loads((out / "scores.json").read_text())
    assert {(e["sandbox"], e["limits"]) for e in entries} == {("bubblewrap", "cgroup-v1")}


@needs_sandbox
def test_the_solutions_notebook_is_out_of_the_kernels_reach(lab01_sandboxed):
    rows, *_ = lab01_sandboxed
    copier = {e.id: e for e in rows["copier"].exercises}
    assert copier["01.correlate2d"].status == "error"
    assert "FileNotFoundError" in copier["01.correlate2d"].message
    assert rows["copier"].total < rows["solution"].total


@needs_sandbox
def test_without_cgroups_each_process_is_limited_on_its_own(host):
    child = ("import subprocess, sys\n"
             "done = subprocess.run([sys.executable, '-c', 'bytearray(3 * 2**29)'],\n"
             "                      capture_output=True, text=True)\n"
             "print(done.returncode, done.stderr.strip().splitlines()[-1])\n")
    outcome, _, texts = _run([child], _options(host, limits_mode=sandbox.LIMITS_RLIMIT))
    assert outcome.ended == "finished"
    assert texts[0].split()[:2] == ["1", "MemoryError"]  # RLIMIT_AS of 1 GiB, in the child
    assert _uid_processes(SANDBOX_UID) == []


@needs_sandbox
@pytest.mark.parametrize("kernels", KERNELS)
def test_a_cell_past_its_timeout_is_interrupted_inside_the_sandbox_and_the_rest_runs(host, kernels):
    outcome, progress, texts = _run(["while True: pass", "print('after')"],
                                    _options(host, kernels, timeout_cell=5))
    assert progress["cells"]["0"]["ename"] == "CellTimeoutError"
    assert texts[1].strip() == "after" and outcome.ended == "finished"


# --------------------------------------------------------------------------------------------
# Warm kernels: forked from a server that has imported TensorFlow, into the same sandbox


IDENTITY = """
import json, os, re, socket, subprocess, sys
before = sorted(m for m in sys.modules if m.split(".")[0] == "cnnlab")
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
seen = {key: status.get(key, "").split() for key in
        ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
         "NoNewPrivs", "Seccomp")}
seen["cnnlab_before_import"] = before
try:
    os.open("/dev/tty", os.O_RDWR)
    seen["terminal"] = "opened"
except OSError as exc:
    seen["terminal"] = type(exc).__name__
seen["new_user_namespace"] = subprocess.run(["unshare", "--user", "true"],
                                            capture_output=True).returncode == 0
try:
    os.setuid(0)
    seen["setuid_0"] = "done"
except OSError as exc:
    seen["setuid_0"] = type(exc).__name__
seen["sys_path"] = sys.path
main = sys.modules["__main__"]
seen["main"] = [main is get_ipython().user_module, getattr(main, "__file__", None),
                sorted(k for k in vars(main) if not k.startswith("_"))[:20]]
seen["argv"] = [os.path.basename(sys.argv[0]), *sys.argv[1:2]]
seen["parent"] = os.getppid()  # the sandbox's init, which ignores the kernel's signals
seen["cwd"] = os.getcwd()
seen["env"] = {k: v for k, v in os.environ.items() if k != "PWD"}
seen["hostname"] = socket.gethostname()
seen["network"] = sorted(name for _, name in socket.if_nameindex())  # its own namespace
# the mount points, with the per-run folder of the grader made alike
seen["mounts"] = sorted(re.sub(r"cnnlab-grade-[^/]+", "RUN", line.split()[4])
                        for line in open("/proc/self/mountinfo"))
seen["processes"] = sorted(open(f"/proc/{p}/comm").read().strip() for p in os.listdir("/proc")
                           if p.isdigit())
import matplotlib.pyplot as plt  # the server imported matplotlib; the kernel picks the backend
plt.figure()
seen["backend"] = plt.get_backend()
seen["post_execute"] = sorted(getattr(hook, "__name__", "?") for hook
                              in get_ipython().events.callbacks["post_execute"])
plt.close("all")
try:
    socket.socket(socket.AF_UNIX).connect(SERVER)
    seen["server_socket"] = "connected"
except OSError as exc:
    seen["server_socket"] = type(exc).__name__
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def identities(host):
    """What a kernel can learn about itself, started cold and warm."""
    server = _warm_server().socket_path()
    assert server, _warm_server().problem
    seen = {}
    for kernels in KERNELS:
        first_operation = ("import cnnlab, keras, numpy\n"
                           "keras.ops.convert_to_tensor(numpy.ones(3))\nprint('quiet')")
        outcome, progress, texts = _run([IDENTITY.replace("SERVER", repr(server)),
                                         first_operation], _options(host, kernels))
        assert outcome.ended == "finished", progress
        seen[kernels] = json.loads(texts[0])
        seen[kernels]["first_operation"] = texts[1]
    return seen


@needs_sandbox
def test_a_warm_kernel_has_exactly_the_cold_kernels_rights_and_view(identities):
    cold, warm = identities["cold"], dict(identities["warm"])
    # one process more: the sleep that holds the sandbox while the kernel is forked into it
    # (killing it ends the sandbox, the kernel with it, as leaving a cold kernel's does)
    assert warm.pop("processes") == sorted(cold.pop("processes") + ["sleep"])
    assert warm == cold
    # and what that is, independently: the sandbox's uid, no capability in any set, no way up
    assert warm["Uid"] == warm["Gid"] == [str(SANDBOX_UID)] * 4 and warm["Groups"] == []
    assert {warm[k][0] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {
        "0000000000000000"}
    assert warm["NoNewPrivs"] == ["1"] and warm["terminal"] == "OSError"  # no terminal to reach
    assert warm["setuid_0"] != "done" and not warm["new_user_namespace"]
    assert warm["network"] == ["lo"] and warm["cwd"] == sandbox.SANDBOX_CWD
    assert warm["first_operation"] == "quiet\n"  # TensorFlow's device lines stay out of cells
    assert warm["parent"] == 1  # (a parent outside the namespace reads 0: kill(0) hits itself)
    assert warm["server_socket"] == "FileNotFoundError"  # the server is out of its reach
    assert warm["cnnlab_before_import"] == []  # the server imported nothing of cnnlab
    # figures show inline, as in JupyterLab: the backend was left for the kernel to load
    assert "inline" in warm["backend"] and "flush_figures" in warm["post_execute"]


@needs_sandbox
def test_the_warm_kernel_server_holds_no_grading_secret(host, monkeypatch):
    """The server is started while the grader's environment holds the course secret; neither
    its environment nor its memory (which every warm kernel inherits) contains it."""
    secret = "course-secret-" + os.urandom(12).hex()
    monkeypatch.setenv("CNNLAB_GRADING_SECRET", secret)
    server = WarmKernels({"cwd": ROOT / "labs", "kit": ROOT, "solutions": ROOT / "solutions",
                          "profile": "smoke", "bwrap": shutil.which("bwrap"),
                          "uids": sandbox.UidPool(SANDBOX_UID)})  # its own, started now
    try:
        assert server.socket_path(), server.problem
        pid = server.pid
        assert secret.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        scanned = 0
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                fields = line.split()
                if not fields[1].startswith("r") or (len(fields) > 5 and
                                                     fields[5].startswith("/")):
                    continue  # unreadable, or a file's own pages
                start, end = (int(x, 16) for x in fields[0].split("-"))
                try:
                    memory.seek(start)
                    chunk = memory.read(end - start)
                except OSError:
                    continue
                scanned += len(chunk)
                assert secret.encode() not in chunk, line
        assert scanned > 50 * 2**20  # TensorFlow's heap was there to search
    finally:
        server.close()


@needs_sandbox
def test_when_the_server_cannot_start_a_kernel_it_starts_cold(host):
    class Gone:
        def socket_path(self):
            return str(host["base"] / "no-server.sock")

    outcome, progress, texts = _run(["print(6 * 7)"], _options(host, warm=Gone()))
    assert texts[0].strip() == "42" and outcome.ended == "finished"
    assert any(line.startswith(b'{"cold"') for line in outcome.lines)
    assert _uid_processes(SANDBOX_UID) == []


@needs_sandbox
def test_a_lab_scores_the_same_with_warm_and_cold_kernels(host, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    name = LABS["02"]
    shutil.copy(ROOT / "solutions" / f"{name}.ipynb", subs / "solution.ipynb")
    shutil.copy(ROOT / "labs" / f"{name}.ipynb", subs / "untouched.ipynb")
    scored, logs = {}, {}
    for kernels in KERNELS:
        log = io.StringIO()
        rows = grade("02", [subs], out=tmp_path / kernels, jobs=2, stream=log,
                     warm_kernels=kernels == "warm")
        logs[kernels] = log.getvalue()
        scored[kernels] = {r.submission: (r.status, r.total, [(e.id, e.points, e.status)
                                                              for e in r.exercises])
                           for r in rows}
    assert "kernels: warm" in logs["warm"] and "kernels: cold" in logs["cold"]
    assert scored["warm"] == scored["cold"]
    assert scored["warm"]["solution"][1] > 0 and scored["warm"]["untouched"][1] == 0


@needs_sandbox
def test_a_batch_of_one_starts_its_kernel_cold_and_a_batch_of_two_warm(tmp_path):
    """A server costs about what it saves one kernel: a batch of one (Gradescope grades one
    submission per container) does without it, as does --cold-kernels.  (Cut notebooks: the
    batch header is all this needs, no kernel runs.)"""
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "a.ipynb").write_text('{"cells": [')

    def header(**options) -> str:
        log = io.StringIO()
        grade("01", [folder], out=tmp_path / "out", stream=log, **options)
        return log.getvalue()

    assert "kernels: cold" in header()
    (folder / "b.ipynb").write_text('{"cells": [')
    assert "kernels: warm" in header()
    assert "kernels: cold" in header(warm_kernels=False)
