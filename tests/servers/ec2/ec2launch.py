"""Instances as real hosts: for each started instance the fake runs the
launcher program (never waiting for it in the request), with INSTANCE_ID,
USER_DATA_FILE (the decoded user-data, 0600), INSTANCE_INDEX (1, 2, ... over
the fake's life) and AMI_LAUNCH_INDEX (0.. within the reservation) in its
environment. The launcher prints the instance's IPv4 address on its first
stdout line once the host is up (e.g. once its sshd listens); until then the
instance stays pending. A launcher that exits without printing one fails the
instance (it goes to terminated with the launcher's exit status as reason).
TerminateInstances runs the terminator with INSTANCE_ID and
INSTANCE_ADDRESS; the instance stays shutting-down until it exits. stderr
lines go to the fake's log and to /_admin/state."""

import ipaddress
import os
import subprocess
import threading


class Job:
    def __init__(self, kind, argv, env, log):
        self.kind, self.argv, self.log = kind, argv, log
        self.address = None
        self.failed = None
        self.done = False
        self.code = None
        self.output = []
        self.proc = None
        try:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            self.failed = "cannot run %s %r: %s" % (kind, argv[0], e)
            self.done = True
            return
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.err_reader.start()
        threading.Thread(target=self._wait, daemon=True).start()

    def _read(self):
        first = True
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if len(self.output) < 50:
                self.output.append(line)
            if first and self.kind == "launcher":
                first = False
                try:
                    self.address = str(ipaddress.IPv4Address(line.strip()))
                except ValueError:
                    self.failed = "launcher's first line is not an IPv4 address: %r" % line[:100]
            self.log("%s %d: %s" % (self.kind, self.proc.pid, line))

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if len(self.output) < 50:
                self.output.append("stderr: " + line)
            self.log("%s %d stderr: %s" % (self.kind, self.proc.pid, line))

    def _wait(self):
        # Exit, not end of output, is what counts: a host the launcher left
        # running may keep its stdout open.
        self.code = self.proc.wait()
        self.reader.join(1)
        self.err_reader.join(1)
        if self.kind == "launcher" and self.address is None and self.failed is None:
            self.failed = "launcher exited with status %d without printing an address" % self.code
        if self.kind == "terminator" and self.code != 0:
            self.log("terminator %d exited with status %d" % (self.proc.pid, self.code))
        self.done = True

    def status(self):
        return {"pid": self.proc.pid if self.proc else None, "address": self.address, "failed": self.failed,
                "done": self.done, "exit_code": self.code,
                "output": list(self.output)}  # stdout lines, then "stderr: ..." ones as they came

    def wait(self, timeout):
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Launcher:
    def __init__(self, launcher_argv, terminator_argv, log):
        self.launcher_argv = launcher_argv
        self.terminator_argv = terminator_argv
        self.enabled = bool(launcher_argv)
        self.log = log
        self.jobs = []

    def _env(self, inst):
        env = dict(os.environ)
        env.update(INSTANCE_ID=inst.id, USER_DATA_FILE=inst.user_data_file, INSTANCE_INDEX=str(inst.index),
                   AMI_LAUNCH_INDEX=str(inst.ami_index), INSTANCE_ADDRESS=inst.address or "")
        return env

    def launch(self, inst):
        job = Job("launcher", self.launcher_argv, self._env(inst), self.log)
        self.jobs.append(job)
        return job

    def terminate(self, inst):
        if not self.terminator_argv:
            return None
        job = Job("terminator", self.terminator_argv, self._env(inst), self.log)
        self.jobs.append(job)
        return job

    def shutdown(self, instances, timeout=20):
        """At the fake's exit: terminate every launched host not yet
        terminated (so no harness host outlives the fake), then stop any
        launcher or terminator still running."""
        pending = []
        for inst in instances:
            if inst.launch is not None and inst.terminate is None and inst.state != "terminated":
                job = self.terminate(inst)
                if job:
                    pending.append(job)
        for job in pending:
            job.wait(timeout)
        for job in self.jobs:
            if job.proc is not None and job.proc.poll() is None:
                job.proc.kill()
