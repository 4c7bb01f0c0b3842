"""The streaming executor: every playbook runs through ansible-runner's transmit -> worker -> process.

This is how AWX and receptor send jobs to execution nodes. The controller zips the job's private data
dir into a stream (``transmit``), a worker command (``ansible-runner worker``, or the same over
``ssh -T node``) unpacks and runs it and streams events back, and the controller turns that stream into
events again (``process``), folded exactly like a local run's.

The job is self-contained because the worker may be another machine: the playbook, the roles it can
use and a copy of the operator's ansible.cfg in ``project/``, the inventory in ``inventory/``, the 0600 secret vars
file at the top, and only environment variables that name no path of this machine.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .ansible_env import AnsibleOptions, AnsibleSecrets, quote_args
from .errors import ConfigError, ExecutionFailed
from .executor import MARKER_ENV, Executor, Job, Status, secret_args, venv_path
from .paths import ROLES_DIR
from .scratch import Scratch

if TYPE_CHECKING:
    from .settings import Settings

# What a worker that ran the job reports last (anything else, e.g. "error", means it never ran it).
RESULTS = ("successful", "failed", "timeout", "canceled")
HINT = "see ansible.worker_command (INTAGENT_ANSIBLE_WORKER_COMMAND)"


def make_executor(settings: Settings, options: AnsibleOptions | None = None,
                  secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None) -> Executor:
    """The executor ``settings.ansible.executor`` names, with the operator's Ansible options; its jobs'
    private files go where ``scratch`` says (default: the ``secrets_dir`` setting's rule)."""
    ansible = settings.ansible
    common: dict[str, Any] = {"forks": ansible.forks, "timeout": ansible.timeout,
                              "package_lock_timeout": ansible.package_lock_timeout, "mitogen": ansible.mitogen,
                              "options": options, "secrets": secrets,
                              "scratch": scratch or Scratch.for_settings(settings)}
    if ansible.executor == "streaming":
        return StreamingExecutor(**common, worker_command=shlex.split(ansible.worker_command))
    return Executor(**common)


class StreamingExecutor(Executor):
    """Runs each playbook in a separate worker process that reads the job on stdin, events on stdout."""

    def __init__(self, *, worker_command: Sequence[str] = ("ansible-runner", "worker"), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker_command = list(worker_command)

    def _invoke(self, job: Job, cancel: threading.Event | None) -> tuple[Status, int]:
        import ansible_runner  # heavy: imported only when a run happens

        playbook, inventories = _stage(job)
        # Relative: the worker runs ansible-playbook in its own project dir.
        relative = lambda path: os.path.relpath(path, playbook.parent)  # noqa: E731
        cmdline = [*job.options, *secret_args(job.secret_files, relative)]
        for extra in inventories[1:]:  # ansible-runner sends one inventory; the others are plain -i flags
            cmdline += ["-i", relative(extra)]
        # The sent ansible.cfg (when the operator has one), relative to the project dir, whatever the worker's
        # environment says; the operator's own ANSIBLE_* variables; Ansible's scratch inside the worker's
        # private dir, removed with it.
        env = {**user_ansible_env(), **job.env, "ANSIBLE_LOCAL_TEMP": ".ansible-tmp"}
        env.pop("ANSIBLE_STRATEGY_PLUGINS", None)  # a path of this machine: _stage sends the plugins instead
        if job.ansible.config_file is not None:
            env["ANSIBLE_CONFIG"] = "ansible.cfg"
        transmit = {
            "private_data_dir": str(job.private), "playbook": str(playbook),
            "inventory": str(inventories[0]), "limit": job.limit, "extravars": job.extravars,
            "cmdline": quote_args(cmdline) or None, "envvars": env, "forks": job.forks,
            "verbosity": job.verbosity or None,
            "quiet": True, "suppress_env_files": True, "suppress_output_file": True,
        }
        statuses: list[dict[str, Any]] = []
        # The worker's TMPDIR: it unpacks the job (secrets included) into a private dir made there.
        secret = bool(job.secret_files)
        scratch = self.scratch.private_dir("intagent-worker-", secrets=secret)
        try:
            with _temp_files_in(self.scratch.folder(secrets=secret)):
                worker = _Worker(self.worker_command, {**os.environ, "PATH": venv_path(), "TMPDIR": str(scratch),
                                                       MARKER_ENV: self.marker})
                with worker.watched(cancel):
                    worker.feed(lambda out: ansible_runner.run(streamer="transmit", _output=out, **transmit))
                    ansible_runner.run(
                        streamer="process", _input=worker.stdout, private_data_dir=str(job.private),
                        event_handler=job.handle, quiet=True, cancel_callback=lambda: False,
                        status_handler=lambda data, runner_config: statuses.append(data))
                exit_code = worker.wait()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # the worker's own cleanup does not run when killed
        rc = _read_rc(job.private / "artifacts" / "rc", exit_code)
        last = statuses[-1] if statuses else {}
        if last.get("status") in RESULTS:
            return last["status"], rc
        if cancel is not None and cancel.is_set():
            return "canceled", rc
        self.stop_leftovers()  # whatever a crashed local worker left running
        raise ExecutionFailed(job.redact.text(worker.failure(exit_code, last.get("job_explanation"))), hint=HINT)


def _read_rc(path: Path, default: int) -> int:
    """ansible-playbook's exit code, from the artifacts the worker sent back (``default`` without them)."""
    text = path.read_text().strip() if path.is_file() else ""
    return int(text) if text.lstrip("-").isdigit() else default


def user_ansible_env() -> dict[str, str]:
    """The operator's own ``ANSIBLE_*`` variables, for a worker that may not inherit this environment
    (those that name intagent's own layout are set for the job instead)."""
    local = ("ANSIBLE_CONFIG", "ANSIBLE_ROLES_PATH", "ANSIBLE_LOCAL_TEMP")
    return {k: v for k, v in os.environ.items() if k.startswith("ANSIBLE_") and k not in local}


def _stage(job: Job) -> tuple[Path, list[Path]]:
    """Copy into the private data dir what a worker on another machine needs; return the playbook and
    inventory paths inside it (ansible-runner sends them relative to that dir)."""
    project = job.private / "project"
    project.mkdir(mode=0o700)  # ansible ignores an ansible.cfg in a world-writable cwd
    playbook = project / job.playbook.name
    shutil.copyfile(job.playbook, playbook)
    if "ANSIBLE_STRATEGY_PLUGINS" in job.env:  # Mitogen's strategy: Ansible loads it from next to the playbook
        shutil.copytree(job.env["ANSIBLE_STRATEGY_PLUGINS"], project / "strategy_plugins",
                        ignore=shutil.ignore_patterns("__pycache__"))
    if job.ansible.config_file is not None:  # the operator's settings travel with the job
        shutil.copyfile(job.ansible.config_file, project / "ansible.cfg")
    roles = project / "roles"  # next to the playbook: ansible looks there first
    sources = [s for s in (job.roles_path, ROLES_DIR) if s is not None and s.is_dir()]
    for source in sources:  # the run's roles win, as on ANSIBLE_ROLES_PATH locally
        for role in sorted(source.iterdir()):
            if role.is_dir() and not (roles / role.name).exists():
                shutil.copytree(role, roles / role.name, ignore=shutil.ignore_patterns("__pycache__"))
    staged = []
    for index, source in enumerate(job.inventories):
        # One folder per source: each keeps the group_vars and host_vars that sit beside it.
        folder = job.private / "inventory" / str(index)
        folder.mkdir(mode=0o700, parents=True)
        inventory = folder / source.name
        if source.is_dir():
            shutil.copytree(source, inventory)
        else:
            shutil.copy(source, inventory)  # keeps the mode: an inventory script stays executable
            for extra in ("group_vars", "host_vars"):  # ansible reads these next to an inventory file
                if (source.parent / extra).is_dir():
                    shutil.copytree(source.parent / extra, folder / extra)
        staged.append(inventory)
    return playbook, staged


class _Worker:
    """The worker command as a child process in its own session: the job goes to its stdin, the event
    stream comes from its stdout, the last lines of its stderr are kept to explain a failure."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise ConfigError(f"the worker command {shlex.join(command)!r} cannot start: {exc.strerror}",
                              hint=HINT) from None
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.stdout = self.proc.stdout
        self.tail: deque[str] = deque(maxlen=10)
        self.feed_error: Exception | None = None
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True)]
        self._threads[0].start()

    def feed(self, transmit: Callable[[IO[bytes]], object]) -> None:
        """Send the job from a thread (the worker may not read it all before it writes events)."""
        def send() -> None:
            assert self.proc.stdin
            try:
                transmit(self.proc.stdin)
            except Exception as exc:  # reported with the worker's failure, if it fails
                self.feed_error = exc
            finally:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
        self._threads.append(threading.Thread(target=send, daemon=True))
        self._threads[-1].start()

    @contextlib.contextmanager
    def watched(self, cancel: threading.Event | None) -> Iterator[None]:
        """While the body talks to the worker (blocked on its stream), stop the worker when ``cancel`` is
        set; and when the body fails, so that no worker outlives its run."""
        done = threading.Event()

        def watch() -> None:
            while cancel is not None and not done.wait(0.2):
                if cancel.is_set():
                    self.stop()
                    return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        except BaseException:
            self.stop()
            raise
        finally:
            done.set()
            watcher.join()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the worker's session (ansible-runner cancels the play), SIGKILL it if it lingers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
                return

    def wait(self) -> int:
        """The worker's exit code, once it and the threads that talk to it are done."""
        code = self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        return code

    def failure(self, exit_code: int, explanation: str | None) -> str:
        """Why the worker gave no result: its exit code, what it or ansible-runner said, its stderr."""
        parts = [f"the worker command {shlex.join(self.command)!r} ended without a result (exit code {exit_code})"]
        if explanation:
            parts.append(explanation.rstrip("."))
        if self.feed_error is not None and not isinstance(self.feed_error, BrokenPipeError):
            parts.append(f"sending the job failed: {self.feed_error}")
        if self.tail:
            parts.append("its stderr ends with: " + " | ".join(self.tail))
        return "; ".join(parts)

    def _drain(self, stream: IO[bytes]) -> None:
        for line in stream:
            if line.strip():
                self.tail.append(line.decode(errors="replace").rstrip())


class _TempDir:
    """Points ``tempfile`` at a directory while streamed runs are under way.

    ansible-runner zips the private data dir, secret vars file included, into a temporary file of
    ``tempfile``'s default directory (``/tmp``, often a disk) on its way to the worker; during a streamed
    run that file goes to the job's scratch folder (the memory file system) instead. Counted, so that
    overlapping runs in threads restore the default only when the last one ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: str | None = None

    @contextlib.contextmanager
    def __call__(self, directory: str | Path | None) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved, tempfile.tempdir = tempfile.tempdir, str(directory) if directory else tempfile.tempdir
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    tempfile.tempdir = self._saved


_temp_files_in = _TempDir()
