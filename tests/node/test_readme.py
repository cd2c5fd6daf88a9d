"""The README runs: every ```sh block of README.md, in order, in one shell, in an empty
directory, as a newcomer would type them after `make run`.

How the blocks are read:
- `make run` starts the node in the background (what the Makefile's run target runs), on free
  loopback ports given by the environment (INTEROPS_GRPC_ADDRESS, INTEROPS_HTTP_ADDRESS); the
  README's 127.0.0.1:50051, :8080 and :8090 are replaced by those ports. `make test` is this
  suite; other `make` targets are left to .ci/run, which runs them itself.
- A command (backslash continuations and multi-line quotes joined) must exit 0, or the status
  its comment announces (`# ...; exit 1`), and print the reason code the comment names
  (`# exit 1: SIRET_PROBLEM_BAD_CHECKSUM`). A command ending in `&` runs in the background.
- `read -r NAME` is the reader typing what came to them: the runner answers with the e-mailed
  code (CODE) or the printed letter's key (LETTER_KEY).
- `<!-- readme-test: needs TOOL -->` before a block: run only where TOOL is installed.
The e-mails go to a real SMTP server run by the test.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.mailbox import Mailbox, smtp_server

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
COMMAND_SECONDS = 180.0
_FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_NEEDS = re.compile(r"<!-- readme-test: needs (\S+) -->\s*\n\s*$")
_EXIT = re.compile(r"#.*\bexit (\d+)")
_SAYS = re.compile(r"#.*\bexit \d+: ([A-Z_]+)")
_READ = re.compile(r"^read -r (?:-p \S+ )?([A-Z_]+)$")
_MARK = "__readme_status__"


@dataclass
class Block:
    line: int
    text: str
    needs: str


def blocks(readme: str) -> list[Block]:
    """The README's ```sh blocks, with the tool each needs (if any)."""
    found = []
    for match in _FENCE.finditer(readme):
        before = readme[: match.start()]
        needs = _NEEDS.search(before[-200:])
        found.append(Block(before.count("\n") + 1, match.group(1), needs.group(1) if needs else ""))
    return found


def commands(text: str) -> Iterator[str]:
    """The block's commands: continuation lines and quotes spanning lines joined; blank and
    comment-only lines dropped."""
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open
            continue
        yield pending
        pending = ""
    assert not pending, f"unfinished command: {pending}"


def expected_status(command: str) -> int:
    """0, or what the command's comment announces."""
    found = _EXIT.search(command.rsplit("\n", 1)[-1])
    return int(found.group(1)) if found else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Shell:
    """One bash, fed a command at a time; each command's output and exit status."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # its jobs (the node, followers) end with it: see close()
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def run(self, command: str, answer: str | None = None) -> tuple[int, str]:
        self.send(command)
        if answer is not None:
            self.send(answer)
        self.send(f"printf '\\n{_MARK} %s\\n' $?")
        output: list[str] = []
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no end after {COMMAND_SECONDS} s: {command}\n{''.join(output)}"
                ) from None
            if line.startswith(_MARK):
                return int(line.split()[1]), "".join(output)
            output.append(line)

    def wait_for(self, pattern: str, seconds: float = 60.0) -> str:
        """Output of background commands until a line matches `pattern`."""
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(seen)}")

    def close(self) -> None:
        """Ends the shell and everything it started, whatever it was doing."""
        try:
            self.send("kill $(jobs -p) 2> /dev/null; wait; exit")
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a command still in the foreground
        self.process.wait(timeout=30)


def _letter_key(workdir: Path) -> str:
    """The activation key printed in the newest letter of the mail room's directory."""
    pdfs = sorted((workdir / "var" / "mail-room").glob("*/*.pdf"), key=lambda p: p.stat().st_mtime)
    assert pdfs, "no letter was printed"
    text = PdfReader(pdfs[-1]).pages[0].extract_text()
    found = re.search(r"activation[^:\n]*: (\S+)", text)
    assert found, text
    return found.group(1)


def test_every_readme_block_runs_in_sequence(tmp_path: Path) -> None:
    grpc_port, http_port, partner_port = _free_port(), _free_port(), _free_port()
    ports = {"127.0.0.1:50051": f"127.0.0.1:{grpc_port}",
             "127.0.0.1:8080": f"127.0.0.1:{http_port}",
             "127.0.0.1:8090": f"127.0.0.1:{partner_port}"}  # fmt: skip
    with smtp_server() as (mailbox, smtp_port):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("INTEROPS_", "OTEL_"))}  # fmt: skip
        env |= {
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "INTEROPS_GRPC_ADDRESS": ports["127.0.0.1:50051"],
            "INTEROPS_HTTP_ADDRESS": ports["127.0.0.1:8080"],
            "INTEROPS_SMTP_HOST": "127.0.0.1",
            "INTEROPS_SMTP_PORT": str(smtp_port),
            "INTEROPS_FEED_POLL_SECONDS": "0.1",
        }
        shell = Shell(tmp_path, env)
        answers: dict[str, Callable[[], str]] = {
            "CODE": lambda: _latest_code(mailbox),
            "LETTER_KEY": lambda: _letter_key(tmp_path),
        }
        try:
            _run_readme(shell, ports, answers)
        finally:
            shell.close()


def _latest_code(mailbox: Mailbox) -> str:
    deadline = time.monotonic() + 20
    while not mailbox.messages:
        assert time.monotonic() < deadline, "no e-mail came"
        time.sleep(0.05)
    found = re.search(r"code : (\S+)", mailbox.messages[-1].get_content())
    assert found, mailbox.messages[-1].get_content()
    return found.group(1)


def _run_readme(shell: Shell, ports: dict[str, str], answers: dict[str, Callable[[], str]]) -> None:
    ran = 0
    for block in blocks(README.read_text(encoding="utf-8")):
        if block.needs and shutil.which(block.needs) is None:
            print(f"README line {block.line}: skipped, no {block.needs} here")
            continue
        for written in commands(block.text):
            command = written
            for readme_port, port in ports.items():
                command = command.replace(readme_port, port)
            word = command.split()[0]
            if word == "make":
                target = command.split()[1]
                if target == "run" and ran == 0:
                    shell.send("interops serve --demo-data &")
                    shell.wait_for(r"INTEROPS_KEY_FILE=")  # the banner's last line
                continue  # `make test` is this suite; the others are .ci/run's
            read = _READ.match(command.split("#")[0].strip())
            answer = answers[read.group(1)]() if read else None
            status, output = shell.run(command, answer)
            expected = expected_status(command)
            assert status == expected, (
                f"README line {block.line}: exit {status}, expected {expected}:\n"
                f"$ {command}\n{output}"
            )
            if said := _SAYS.search(command.rsplit("\n", 1)[-1]):
                assert said.group(1) in output, f"README line {block.line}: {command}\n{output}"
            ran += 1
    assert ran > 40, f"only {ran} commands ran"
