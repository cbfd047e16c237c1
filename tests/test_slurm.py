"""examples/slurm/grade.sbatch on a real single-node Slurm: four shards, a merge, one run's scores.

Opt-in (it starts daemons as root): ``CNNLAB_SLURM_TEST=1`` (``.ci/run`` sets it), with Debian's
``slurm-wlm`` and ``munge`` installed.  The test starts ``munged`` with a key of its own and
``slurmctld`` and ``slurmd`` for this machine from a generated ``slurm.conf`` (every file, socket
and port of its own, in a temporary folder: nothing under /etc is read or written), waits for the
node to be idle, submits the example job array over the eight submissions of
tests/test_shards.py in four shards (one CPU and one job each, two at a time on two CPUs), waits
for the array and the merge job it queues, and compares the merged scores with one
``cnnlab grade`` run of the same batch.  Every daemon it started is stopped at the end, pass or
fail.  7.5 minutes on the shared 2-core machine, of which the whole run (shared with
tests/test_shards.py in one session) took about three.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_shards import csv_without_similar, graded, whole_run
from tests.conftest import ROOT

SBATCH = ROOT / "examples" / "slurm" / "grade.sbatch"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CNNLAB_SLURM_TEST") != "1",
                       reason="starts a single-node Slurm as root: run it with "
                              "CNNLAB_SLURM_TEST=1 (and Debian's slurm-wlm and munge installed),"
                              " as .ci/run does"),
]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _slurm_conf(folder: Path, host: str, ports) -> str:
    return "\n".join([
        "ClusterName=cnnlab-test",
        f"SlurmctldHost={host}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder / 'munge' / 'socket'}",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "ReturnToService=2",
        "MpiDefault=none",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_memory_mb() // 2} "
        "State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ""])


def _logs(folder: Path) -> str:
    """The tail of every log and job output, for a failure's message."""
    parts = []
    for path in sorted(folder.glob("*.log")) + sorted(folder.glob("*.out")) \
            + sorted(folder.glob("munge/*.log")) + sorted(folder.glob("work/*.out")):
        lines = path.read_text(errors="replace").splitlines()[-15:]
        parts.append(f"==== {path.name}\n" + "\n".join(lines))
    return "\n".join(parts)


class SingleNodeSlurm:
    """munged, slurmctld and slurmd for this machine, each a child process of this one."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes = []
        self.env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}

    def run(self, *command, check=True) -> str:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): "
                                 f"{done.stderr.strip()}\n{_logs(self.folder)}")
        return done.stdout

    def _start(self, *command) -> None:
        log = (self.folder / f"{Path(command[0]).name}.out").open("w")
        self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=log,
                                               stdin=subprocess.DEVNULL))

    def start(self) -> None:
        folder, host = self.folder, socket.gethostname().split(".")[0]
        folder.chmod(0o755)  # munged wants its socket's folders open to every user
        (folder / "munge").mkdir(mode=0o755)
        for name in ("state", "spool"):
            (folder / name).mkdir(mode=0o700)
        key = folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._start("munged", "--foreground", f"--key-file={key}",
                    f"--socket={folder / 'munge' / 'socket'}",
                    f"--pid-file={folder / 'munge' / 'munged.pid'}",
                    f"--seed-file={folder / 'munge' / 'munged.seed'}",
                    f"--log-file={folder / 'munge' / 'munged.log'}")
        self._wait(lambda: (folder / "munge" / "socket").exists(), 30, "munged's socket")
        (folder / "slurm.conf").write_text(_slurm_conf(folder, host, _free_ports(2)))
        self._start("slurmctld", "-D", "-i")
        self._start("slurmd", "-D")
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle",
                   90, "the node to be idle (sinfo)")

    def _wait(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [p.args[0] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what}: " + (
                    f"{', '.join(dead)} exited" if dead else f"not within {seconds} s")
                    + f"\n{_logs(self.folder)}")
            time.sleep(1)

    def stop(self) -> None:
        """Cancel every job, then stop the daemons in the reverse order they started."""
        if len(self.processes) == 3 and all(p.poll() is None for p in self.processes):
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.monotonic() + 30
            while self.run("squeue", "-h", check=False).strip() \
                    and time.monotonic() < deadline:
                time.sleep(1)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.fail("the Slurm test starts slurmd, which runs jobs as their users: run it as "
                    "root (in CI or a container)")
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's slurm-wlm and munge "
                    "(apt-get install slurm-wlm munge), as .ci/run does")
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-slurm-"))  # short: munge's socket path
    cluster = SingleNodeSlurm(folder)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_example_job_array_and_its_merge_score_as_one_run(slurm, tmp_path_factory):
    whole = whole_run(tmp_path_factory)
    work = slurm.folder / "work"
    work.mkdir()
    env = {"LAB": "01", "SUBMISSIONS": str(whole.parent / "submissions"),
           "RESULTS": str(work / "results"), "CNNLAB": f"{sys.executable} -m cnnlab.cli",
           "JOBS": "1", "GRADE_ARGS": "--timeout-cell 120 --timeout-notebook 400",
           "PYTHONPATH": str(ROOT)}
    slurm.env.update(env)
    array = slurm.run("sbatch", "--parsable", "--cpus-per-task=1", f"--chdir={work}",
                      str(SBATCH)).strip()
    deadline = time.monotonic() + 1200
    while slurm.run("squeue", "-h", check=False).strip():  # the array, then the merge
        assert time.monotonic() < deadline, "the jobs did not end within 20 min\n" + \
            _logs(slurm.folder)
        time.sleep(3)
    results = work / "results"
    merge_log = "".join(p.read_text() for p in work.glob("cnnlab-merge-*.out"))
    assert (results / "scores.csv").exists(), f"no merged scores\n{_logs(slurm.folder)}"
    assert "statuses: graded 7, unreadable 1" in merge_log, merge_log
    manifests = sorted(results.glob("shard-*/shard.json"))
    assert [m.parent.name for m in manifests] == [f"shard-{i}" for i in range(4)]
    for i, manifest in enumerate(manifests):  # the shard came from the array, not --shard
        text = manifest.read_text()
        assert f'"source": "SLURM_ARRAY_TASK_ID={i} (SLURM_ARRAY_TASK_MIN=0' in text
    assert len(list(work.glob(f"cnnlab-grade-{array}_*.out"))) == 4
    assert graded(results) == graded(whole)
    assert csv_without_similar(results) == csv_without_similar(whole)
    for path in (whole / "feedback").iterdir():
        assert (results / "feedback" / path.name).read_text() == path.read_text()
