"""`mcp-gateway chat` on a real pseudo-terminal (pexpect), and with piped input."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pexpect

from tests.conftest import EXAMPLE, serve_command

SERVE = shlex.join(serve_command(EXAMPLE))
CHAT = [sys.executable, "-m", "mcp_gateway", "chat", SERVE]


def test_chat_on_a_terminal_keeps_one_session() -> None:
    child = pexpect.spawn(CHAT[0], CHAT[1:], encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect(r"chatting with chat in session (sess_\S+);")
        handle = child.match.group(1)
        child.expect_exact("you> ")
        child.sendline("My name is Ada.")
        child.expect_exact("Offline answer to a 4-word prompt: My name is Ada.")
        child.expect_exact("you> ")
        child.sendline('/set name="Ada"')
        child.expect_exact("set name (state keys: name)")
        child.expect_exact("you> ")
        child.sendline("/state")
        child.expect_exact('"name": "Ada"')
        child.expect_exact("you> ")
        child.sendline("Which name did I give?")
        child.expect_exact("Which name did I give?")
        child.expect_exact("you> ")
        child.sendline("/history")  # both turns, in order, in the same session
        child.expect_exact(f"# Session {handle}")
        child.expect_exact("2 turns")
        child.expect_exact("My name is Ada.")
        child.expect_exact("Which name did I give?")
        child.expect_exact("you> ")
        child.sendline("/nope")
        child.expect_exact("unknown command /nope")
        child.expect_exact("you> ")
        child.sendline("/end")
        child.expect_exact(f"session {handle} ended")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_ctrl_d_leaves_and_keeps_the_session() -> None:
    child = pexpect.spawn(CHAT[0], CHAT[1:], encoding="utf-8", timeout=60)
    try:
        child.expect(r"in session (sess_\S+);")
        handle = child.match.group(1)
        child.expect_exact("you> ")
        child.sendeof()
        child.expect_exact(f"session {handle} kept")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_chat_reads_piped_input() -> None:
    done = subprocess.run(CHAT, input="hello there\n/history\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "you> " not in done.stdout
    assert done.stdout.startswith("[mock-1] Offline answer to a 2-word prompt: hello there\n")
    assert "1 turns" in done.stdout


def test_chat_names_a_missing_tool() -> None:
    done = subprocess.run([*CHAT, "sumarize"], input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "did you mean 'summarize'?" in done.stderr
