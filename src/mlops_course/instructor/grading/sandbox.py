"""Running a student's kernel in a sandbox: no network, a read-only system, limits, a deadline.

The kernel is started by :class:`SandboxedKernelManager`, which nbgrader uses when
``grading/nbgrader_config.py`` finds a policy in ``MLOPS_COURSE_SANDBOX`` (class grading). The kernel process runs under
Debian's ``bubblewrap``:

- a private network namespace (only its own loopback: a tracking server the notebook
  starts still works, nothing outside does);
- of the machine's file system only /usr and /etc, read-only, and a private /tmp; then only
  what the kernel needs, bound back one folder at a time: the Python environment and its
  base installation, the package source, the data cache or mirror, the walkthroughs (all
  read-only), and the submission's own folder (writable). No home folder, no other clone of
  the course, no other submission is there;
- an unprivileged user (``nobody``), so process, memory and CPU-time limits (``prlimit``)
  apply, and a wall-clock deadline (``timeout``) after which the kernel is killed.

The grader talks to the kernel over ZeroMQ IPC sockets in a short folder bound into the
sandbox (TCP cannot cross the network namespace). The policy reaches the kernel manager,
which runs inside nbgrader, through the ``MLOPS_COURSE_SANDBOX`` environment variable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from mlops_course.runtime.errors import CourseError

__all__ = [
    "POLICY_VARIABLE",
    "SandboxPolicy",
    "SandboxedKernelManager",
    "available",
    "give_to_nobody",
    "sandbox_command",
    "sandbox_pid",
]

POLICY_VARIABLE = "MLOPS_COURSE_SANDBOX"
# The whole file system read-only, with fresh /dev and /proc of the sandbox's own (the probe).
SYSTEM_VIEW = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
# What a kernel sees of the machine: the system's programs and libraries and /etc, read-only.
# Nothing else of the machine is there (no home folders, no /work, /srv, /opt, /var): what the
# kernel needs besides is bound back one folder at a time (the Python environment, the
# package, the data, the walkthroughs, the submission's own folder).
SYSTEM_DIRS = ("/usr", "/etc")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


def _system_view() -> list[str]:
    argv: list[str] = []
    for folder in SYSTEM_DIRS:
        argv += ["--ro-bind", folder, folder]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    return [*argv, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]


NOBODY = 65534


class SandboxUnavailable(CourseError):
    """bubblewrap is missing or cannot create namespaces here."""


def available() -> bool:
    """True when ``bwrap`` can start a process in a new network namespace on this machine."""
    if not (shutil.which("bwrap") and shutil.which("setpriv") and shutil.which("prlimit")):
        return False
    import subprocess

    probe = subprocess.run(
        ["bwrap", "--unshare-net", *SYSTEM_VIEW, "true"],
        capture_output=True,
    )
    return probe.returncode == 0


@dataclass
class SandboxPolicy:
    """What a sandboxed kernel may use. Serialized into the environment of nbgrader."""

    timeout_seconds: int = 600
    cpu_seconds: int = 1200
    memory_bytes: int = 8 * 1024**3
    max_processes: int = 256
    hide: list[str] = field(default_factory=list)  # folders replaced by an empty tmpfs
    expose: list[str] = field(default_factory=list)  # folders bound back read-only
    records: str = ""  # where exit records go (outside the submission, which nbgrader may delete)
    enabled: bool = True

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> SandboxPolicy:
        raw = os.environ.get(POLICY_VARIABLE)
        return cls(**json.loads(raw)) if raw else cls(enabled=False)


def _python_roots() -> list[str]:
    """The environment and the base installation it links to (both must stay visible)."""
    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(roots)


def sandbox_command(
    kernel_cmd: list[str],
    workdir: Path,
    ipc_dir: Path,
    policy: SandboxPolicy,
    exit_file: Path | None = None,
) -> list[str]:
    """Wrap a kernel command line with bubblewrap, an unprivileged user, limits and a deadline."""
    argv = [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        *(["--info-fd", "3"] if exit_file is not None else []),
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        *_system_view(),
    ]
    bound = [
        (f, "--ro-bind")
        for f in dict.fromkeys([*_python_roots(), *policy.expose])
        if os.path.exists(f)
    ]
    bound += [(str(workdir), "--bind"), (str(ipc_dir), "--bind")]
    made: set[str] = {"/", *SYSTEM_DIRS, "/tmp", "/dev", "/proc"}
    for folder, how in bound:
        # Folders bwrap creates for a mount point are private (0700): nobody must traverse them.
        for parent in reversed(Path(folder).parents):
            text = str(parent)
            if text not in made and not text.startswith(tuple(d + "/" for d in SYSTEM_DIRS)):
                argv += ["--perms", "0755", "--dir", text]
                made.add(text)
        argv += [how, folder, folder]
    # Folders inside what is shown that must stay hidden (none by default).
    for folder in policy.hide:
        if any(folder.startswith(f + "/") for f, _ in bound) and os.path.isdir(folder):
            argv += ["--tmpfs", folder]
    argv += [
        "--chdir",
        str(workdir),
        "--setenv",
        "HOME",
        str(workdir),
        "--setenv",
        "TMPDIR",
        str(workdir / ".tmp"),
        "--setenv",
        "MPLCONFIGDIR",
        str(workdir / ".tmp"),
        "--",
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "prlimit",
        f"--nproc={policy.max_processes}",
        f"--as={policy.memory_bytes}",
        f"--cpu={policy.cpu_seconds}",
        "--",
        "timeout",
        "--signal=KILL",
        str(policy.timeout_seconds),
        *kernel_cmd,
    ]
    if exit_file is None:
        return argv
    # The shell outside the sandbox writes down the exit status and the seconds the kernel
    # lived, also when it dies mid-notebook: a kill at the deadline tells a timeout from a crash.
    # bwrap writes the sandbox's first process id to fd 3 (the .info file): the judge enters that
    # process's network namespace to reach the servers the notebook started.
    info_file = exit_file.with_suffix(".info")
    script = (
        f'start=$(date +%s); "$@" 3>{info_file}; code=$?; '
        f'echo "$code $(( $(date +%s) - start ))" > {exit_file}'
    )
    return ["sh", "-c", script, "sandboxed-kernel", *argv]


def sandbox_pid(folder: Path, student: str) -> int | None:
    """The process id of a student's running sandbox (from bwrap's info), or None."""
    import json

    try:
        pid = int(json.loads((folder / f"{student}.info").read_text())["child-pid"])
    except (OSError, ValueError, KeyError):
        return None
    return pid if Path(f"/proc/{pid}/ns/net").exists() else None


def _exit_file(policy: SandboxPolicy, workdir: Path) -> Path:
    """``<records>/kernels/<student>.exit`` (the submission folder is ``.../<student>/<assignment>``)."""
    folder = Path(policy.records or workdir) / "kernels"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{workdir.parent.name}.exit"


def timed_out(folder: Path, student: str, deadline: float) -> bool:
    """True when the student's kernel was killed at its deadline (not crashed earlier)."""
    exit_file = folder / f"{student}.exit"
    if not exit_file.exists():
        return False
    code, lived = (exit_file.read_text().split() + ["", "0"])[:2]
    return code in ("124", "137") and float(lived) >= deadline - 2


def give_to_nobody(path: Path) -> None:
    """Make ``path`` and everything below it the sandbox user's (what the grader wrote there:
    the store a hidden test created must stay writable by the student's kernel)."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            entry = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):  # a server's log may come and go
                if os.lstat(entry).st_uid != NOBODY:
                    os.lchown(entry, NOBODY, NOBODY)
    os.chown(path, NOBODY, NOBODY)


# The grader's secrets and its own store must never reach a student's kernel.
GRADER_ONLY = (
    "MLFLOW_TRACKING_URI",
    "MLOPS_COURSE_OWN_TRACKING_URI",
    POLICY_VARIABLE,
    "MLOPS_COURSE_NBGRADER_ROOT",  # the worker course's folder
)


def _scrubbed(kw: dict) -> dict:
    env = dict(kw.get("env") or os.environ)
    for name in GRADER_ONLY:
        env.pop(name, None)
    kw["env"] = env
    return kw


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel in the sandbox of :class:`SandboxPolicy`.

    Without a policy in the environment it behaves like the plain ``AsyncKernelManager``.
    """

    async def _async_pre_start_kernel(self, **kw):  # type: ignore[override]
        policy = SandboxPolicy.from_env()
        self._sandbox_policy = policy
        if not policy.enabled:
            kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
            return kernel_cmd, _scrubbed(kw)
        workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
        # A short folder: Unix socket paths are limited to about 100 characters.
        ipc_dir = Path(tempfile.mkdtemp(prefix="mk-", dir="/tmp"))
        (workdir / ".tmp").mkdir(exist_ok=True)
        self._sandbox_ipc = ipc_dir
        self.transport = "ipc"
        self.ip = str(ipc_dir / "k")
        self.connection_file = str(ipc_dir / "connection.json")
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        give_to_nobody(workdir)
        give_to_nobody(ipc_dir)
        os.chmod(self.connection_file, 0o600)
        exit_file = _exit_file(policy, workdir)
        exit_file.unlink(missing_ok=True)
        exit_file.with_suffix(".info").unlink(missing_ok=True)
        return sandbox_command(kernel_cmd, workdir, ipc_dir, policy, exit_file), _scrubbed(kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        await super()._async_cleanup_resources(restart=restart)
        ipc_dir = getattr(self, "_sandbox_ipc", None)
        if ipc_dir is not None and not restart:
            shutil.rmtree(ipc_dir, ignore_errors=True)
