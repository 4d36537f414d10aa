"""Drives an interactive ECS Exec session as a person at a terminal would: runs the
command given as JSON (`aws ecs execute-command ... --command /bin/sh`) on a
pseudo-terminal, types two commands, resizes the window, and exits the shell.
Prints a JSON summary; exits non-zero with what it saw when a step times out."""

import fcntl
import json
import os
import pty
import select
import struct
import sys
import termios
import time

argv = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

seen = b""


def set_size(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_some(deadline):
    global seen
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
    if ready:
        try:
            seen += os.read(fd, 65536)
        except OSError:
            fail("the terminal closed")


def fail(why):
    print(json.dumps({"error": why, "seen": seen.decode(errors="replace")}))
    sys.exit(1)


def expect(needle, timeout=60.0):
    deadline = time.time() + timeout
    while needle not in seen:
        if time.time() > deadline:
            fail(f"no {needle!r} within {timeout}s")
        read_some(deadline)


def send(text):
    os.write(fd, text.encode())


set_size(30, 90)
expect(b"Starting session with SessionId")
send("echo one-$((40+2))\r")
expect(b"one-42")
send("echo two-$((50+5))\r")
expect(b"two-55")
send("stty size\r")
expect(b"30 90")

# A window change reaches the remote terminal: ask again until it shows.
set_size(40, 100)
deadline = time.time() + 30
while b"40 100" not in seen:
    if time.time() > deadline:
        fail("the new window size never reached the remote terminal")
    send("stty size\r")
    read_some(min(deadline, time.time() + 1.0))

send("exit\r")
expect(b"Exiting session with sessionId")
_, status = os.waitpid(pid, 0)
print(json.dumps({"exit_status": os.waitstatus_to_exitcode(status), "checked": ["interactive", "resize"]}))
