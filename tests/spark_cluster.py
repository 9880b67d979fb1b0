"""A Spark standalone cluster for the tests, started from the pyspark package (it has no sbin/ scripts, but its
`spark-class` starts a master and workers): one master and two workers on 127.0.0.1, one core and 768 MB each.
Each worker runs in a mount namespace of its own (`unshare -m`, as root), where each folder in `hidden` is
covered by an empty tmpfs (but the folders in `kept`, bind-mounted back): as on other machines, the workers see
only what is shared. A hidden folder must be one nothing deletes while the cluster runs: Linux detaches the
mounts of other namespaces from a deleted directory, which would show the real one again.

Every daemon runs in a process group of its own (its executors too) and is killed with it by `stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from api.core.db.port import free_port

#: How long the master and the workers have to come up (JVM start-ups on a busy two-core machine).
START_SECONDS = 180


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def can_hide_folders() -> str | None:
    """Why a worker cannot get a mount namespace of its own here, or None."""
    if os.geteuid() != 0:
        return "a worker in its own mount namespace needs root (unshare -m)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --make-rprivate / && mount -t tmpfs tmpfs /mnt"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"unshare -m with a tmpfs mount fails here: {probe.stderr.strip()}"


class SparkCluster:
    def __init__(self, root: Path, hidden: list[Path], kept: list[Path] = ()) -> None:
        self.root = root
        self.hidden = hidden
        self.kept = list(kept)
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self._procs: list[subprocess.Popen[bytes]] = []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("SPARK_CONF_DIR", None)
        env.update(SPARK_DAEMON_MEMORY="256m", SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
        return env

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - the daemon writes it until stop()
        self._procs.append(
            subprocess.Popen(
                ["nice", "-n", "10", *command],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()

    def start(self) -> SparkCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        bin_ = str(spark_class())
        master = "org.apache.spark.deploy.master.Master"
        self._start("master", [bin_, master, "--host", "127.0.0.1", "--port", str(self.port),
                               "--webui-port", str(self.ui_port)])  # fmt: skip
        worker = "org.apache.spark.deploy.worker.Worker"
        for n in (1, 2):
            command = [bin_, worker, "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port",
                       str(free_port()), "--cores", "1", "--memory", "768m", "--work-dir",
                       str(self.root / f"work{n}"), self.url]  # fmt: skip
            if self.hidden:  # another machine: the hidden folders are not there
                command = ["unshare", "-m", "sh", "-c", self._namespace_script(n, command)]
            self._start(f"worker{n}", command)
        deadline = time.monotonic() + START_SECONDS
        while self.status().get("aliveworkers", 0) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop()
                logs = {p.name: p.read_text(errors="replace")[-1500:] for p in self.root.glob("*.log")}
                raise RuntimeError(f"the Spark cluster did not come up: {logs}")
            time.sleep(1)
        return self

    def _namespace_script(self, n: int, command: list[str]) -> str:
        views = [self.root / f"ns{n}" / f"kept{i}" for i in range(len(self.kept))]
        for view in views:
            view.mkdir(parents=True, exist_ok=True)
        steps = ["mount --make-rprivate /"]
        steps += [
            f"mount --bind {shlex.quote(str(k))} {shlex.quote(str(v))}" for k, v in zip(self.kept, views, strict=True)
        ]
        steps += [f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(h))}" for h in self.hidden]
        for kept, view in zip(self.kept, views, strict=True):
            steps += [
                f"mkdir -p {shlex.quote(str(kept))}",
                f"mount --bind {shlex.quote(str(view))} {shlex.quote(str(kept))}",
            ]
        return " && ".join([*steps, f"exec {shlex.join(command)}"])

    def status(self) -> dict:
        """The master's JSON status (workers, applications), {} while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as response:
                return json.load(response)
        except OSError:
            return {}

    def stop(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        self._procs.clear()
