"""Real gloo ranks on CPU when things go wrong: a rank hangs in a collective, the launcher is
killed, two runs start on one machine without a port.

Each run is a child interpreter (this module's :func:`main`) that launches 2 ranks with
``du.launch_job`` and no ``init_method``. The jobs write their pids and progress into the
output folder, so the test can watch them from outside.
"""
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import List

import pytest
import torch

from m3a.config import get_cfg
from m3a.utils import checkpoint as cu
from m3a.utils import distributed as du
from m3a.utils.logging import setup_logging
from m3a.utils.parser import load_config_from_args, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 2
# Slack for process start-up and teardown on a loaded 2-core machine.
MARGIN_S = 25.0


def _write(path: str, text: str) -> None:
    with open(path + ".part", "w") as f:
        f.write(text)
    os.replace(path + ".part", path)


class _HangJob:
    """Rank ``hang_rank`` stops itself (SIGSTOP) before a barrier that the other rank enters."""

    def __init__(self, out: str, hang_rank: int):
        self.out, self.hang_rank = out, hang_rank

    def __call__(self, cfg) -> None:
        rank = du.get_rank()
        _write(os.path.join(self.out, f"pid{rank}"), str(os.getpid()))
        if rank == self.hang_rank:
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            _write(os.path.join(self.out, "entered"), repr(time.time()))
        du.synchronize()
        _write(os.path.join(self.out, f"passed{rank}"), "")


class _CheckpointingJob:
    """Both ranks loop over barriers; rank 0 saves a real checkpoint every 0.2 s."""

    def __init__(self, out: str):
        self.out = out

    def __call__(self, cfg) -> None:
        rank = du.get_rank()
        _write(os.path.join(self.out, f"pid{rank}"), str(os.getpid()))
        model = torch.nn.Linear(4, 2)
        for epoch in range(1, 600):
            du.synchronize()
            if rank == 0:
                cu.save_checkpoint(self.out, model, None, None, epoch, cfg)
            time.sleep(0.2)


class _GatherJob:
    """Gather every rank's number and write it (rank 0)."""

    def __init__(self, out: str):
        self.out = out

    def __call__(self, cfg) -> None:
        ranks = du.all_gather_objects(du.get_rank())
        if du.get_rank() == 0:
            _write(os.path.join(self.out, "gathered"), repr(ranks))


def main(kind: str, out: str, *extra: str) -> None:
    """Child interpreter: launch 2 CPU ranks of job ``kind`` with no init_method."""
    setup_logging()
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.NUM_CPU_PROCESSES = 2
    cfg.DIST_TIMEOUT_S = TIMEOUT_S
    jobs = {"hang": lambda: _HangJob(out, int(extra[0])), "checkpointing": lambda: _CheckpointingJob(out),
            "gather": lambda: _GatherJob(out)}
    try:
        du.launch_job(cfg, jobs[kind]())
    except Exception as err:  # the exit status tells the test; the message is for its report
        print(f"launcher: {type(err).__name__}: {str(err).strip()[:300]}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 1) or 1)


def _command(kind: str, out: str, *extra: str) -> List[str]:
    code = "import sys; from tests.engine.test_ddp_failures import main; main(*sys.argv[1:])"
    return [sys.executable, "-c", code, kind, out, *extra]


def _pids(out: str) -> List[int]:
    return [int(open(p).read()) for p in sorted(glob.glob(os.path.join(out, "pid[0-9]")))]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _kill_all(pids: List[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("hang_rank", [1, 0])
def test_hung_rank_ends_the_job_with_one_line_naming_it(tmp_path, hang_rank):
    out = str(tmp_path)
    try:
        proc = subprocess.run(_command("hang", out, str(hang_rank)), cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        ended = time.time()
    finally:
        _kill_all(_pids(out))
    assert proc.returncode != 0, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"rank(s) {hang_rank} did not take part" in errors[0] and "DIST_TIMEOUT_S=2 s" in errors[0], errors
    assert "Traceback" not in proc.stderr
    assert not glob.glob(os.path.join(out, "passed*"))
    with open(os.path.join(out, "entered")) as f:
        waited = ended - float(f.read())
    print(f"hung rank {hang_rank}: job ended {waited:.1f} s after the barrier (timeout {TIMEOUT_S:g} s)")
    assert TIMEOUT_S <= waited < TIMEOUT_S + MARGIN_S


def test_ranks_die_with_their_launcher(tmp_path):
    out = str(tmp_path)
    # SIGINT ignored, as for a launcher started with nohup or `&` from a script: torch's own
    # parent-death signal (SIGINT) then does nothing.
    proc = subprocess.Popen(_command("checkpointing", out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    checkpoints = os.path.join(out, cu.CHECKPOINT_DIR, "checkpoint_epoch_*.pyth")
    try:
        started = _wait_for(lambda: len(_pids(out)) == 2 and len(glob.glob(checkpoints)) >= 2, 90)
        assert started, proc.stderr.read().decode() if proc.poll() is not None else "no checkpoints after 90 s"
        pids = _pids(out)
        proc.kill()
        proc.wait()
        killed = time.monotonic()
        gone = _wait_for(lambda: not any(_alive(p) for p in pids), 10)
        took = time.monotonic() - killed
        written = len(glob.glob(checkpoints))
        time.sleep(1.0)
        assert gone, f"ranks {[p for p in pids if _alive(p)]} still run 10 s after their launcher was killed"
        print(f"ranks gone {took:.2f} s after kill -9 of the launcher")
        assert took < 5.0
        assert len(glob.glob(checkpoints)) == written
    finally:
        _kill_all(_pids(out))
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_concurrent_runs_pick_free_ports(tmp_path):
    """Two runs without a port both succeed, on distinct free ports, avoiding one that is taken
    (9999, the old fixed default, when this machine lets the test hold it)."""
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server would: TIME_WAIT is no obstacle
    try:
        taken.bind(("", 9999))
        taken.listen()
        blocked = 9999
    except OSError:
        taken.bind(("", 0))
        taken.listen()
        blocked = taken.getsockname()[1]
    outs = [str(tmp_path / f"run{i}") for i in range(2)]
    try:
        procs = []
        for out in outs:
            os.makedirs(out)
            env = {k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "MASTER_ADDR")}
            procs.append(subprocess.Popen(_command("gather", out), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        taken.close()
    ports = []
    for proc, (stdout, stderr), out in zip(procs, results, outs):
        assert proc.returncode == 0, stderr
        with open(os.path.join(out, "gathered")) as f:
            assert f.read() == "[0, 1]"
        found = re.findall(r"rendezvous on tcp://127\.0\.0\.1:(\d+), a free port", stdout)
        assert len(found) == 1, stdout
        ports.append(int(found[0]))
    assert ports[0] != ports[1] and blocked not in ports


def test_given_rendezvous_is_kept(monkeypatch):
    cfg = get_cfg()
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert du.resolve_init_method("tcp://10.0.0.1:2345", cfg) == "tcp://10.0.0.1:2345"
    assert du.resolve_init_method(None, cfg) is None  # one node: the launcher picks a free port
    monkeypatch.setenv("MASTER_ADDR", "node0")
    monkeypatch.setenv("MASTER_PORT", "29511")
    assert du.resolve_init_method(None, cfg) == "tcp://node0:29511"
    monkeypatch.delenv("MASTER_PORT")
    cfg.NUM_SHARDS = 2
    with pytest.raises(du.ConfigError, match="--init_method"):
        du.resolve_init_method(None, cfg)
    cfg.DIST_TIMEOUT_S = 0
    with pytest.raises(du.ConfigError, match="DIST_TIMEOUT_S"):
        du.dist_timeout(cfg)


def test_timeout_comes_from_the_command_line(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("NUM_GPUS: 0\n")
    assert get_cfg().DIST_TIMEOUT_S == 600
    cfg = load_config_from_args(parse_args(["--cfg", str(cfg_file), "DIST_TIMEOUT_S", "45"]))
    assert du.dist_timeout(cfg).total_seconds() == 45.0
