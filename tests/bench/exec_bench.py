"""ECS Exec figures against the demo task's `web` container (scripts/bench-exec.sh):
start-to-exit of a trivial command through `aws ecs execute-command` (pip v1 and
Debian's v2, Berth's plugin) and `berth exec`, side by side with `ctr task exec` on the
same container; the round trip of one keystroke echoed by the remote terminal (p50,
p99); and `cat` of a 100 MB file through a session, against `ctr task exec`."""

import json
import os
import pty
import select
import statistics
import subprocess
import sys
import time

task, release = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
task_id = task.rsplit("/", 1)[-1]
container_id = f"{task_id}-web"
env = dict(os.environ, PATH=f"{release}:{os.environ['PATH']}", AWS_PAGER="")
ctr = ["ctr", "--address", os.environ["BERTH_CONTAINERD_SOCK"], "-n", os.environ["BERTH_NAMESPACE"]]
berth = [f"{release}/berth", "exec", task, "-c", "web", "--"]
endpoint = os.environ["AWS_ENDPOINT_URL"]


def timed(argv, **kw):
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, **kw)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{argv} failed: {out.stdout[-500:]!r} {out.stderr[-500:]!r}")
    return elapsed, out.stdout


def summary(name, seconds):
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[int(len(ms) * 0.9) - 1]
    print(f"{name:<34} median_ms={statistics.median(ms):7.1f} p90_ms={p90:7.1f} n={len(ms)}")


execute = ["ecs", "execute-command", "--task", task, "--container", "web", "--interactive", "--command", "true"]
print(f"== start to exit of `true` ({runs} runs each)")
summary("aws v1 ecs execute-command", [timed(["aws"] + execute)[0] for _ in range(runs)])
summary("aws v2 ecs execute-command", [timed(["/usr/bin/aws"] + execute + ["--endpoint-url", endpoint])[0] for _ in range(runs)])
summary("berth exec", [timed(berth + ["true"])[0] for _ in range(runs)])
summary("ctr task exec (baseline)", [timed(ctr + ["task", "exec", "--exec-id", f"bench{i}", container_id, "true"])[0] for i in range(runs)])

print("== keystroke echo round trip (berth exec -- /bin/cat on a pseudo-terminal)")
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(berth[0], berth + ["/bin/cat"], env)


def read_until(needle, timeout=30.0):
    seen, deadline = b"", time.time() + timeout
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
        if not ready:
            sys.exit(f"no {needle!r}: {seen[-200:]!r}")
        seen += os.read(fd, 65536)
    return seen


os.write(fd, b"ready\r")
read_until(b"ready\r\nready")
trips = []
for i in range(300):
    ch = bytes([ord("a") + i % 26])
    t0 = time.perf_counter()
    os.write(fd, ch)
    read_until(ch)
    trips.append(time.perf_counter() - t0)
ms = sorted(t * 1000 for t in trips)
print(f"{'echo round trip':<34} p50_ms={ms[len(ms) // 2]:6.2f} p99_ms={ms[int(len(ms) * 0.99) - 1]:6.2f} n={len(ms)}")
# End the line, then end of input: cat exits, and the session with it.
os.write(fd, b"\r\x04")
os.waitpid(pid, 0)

size = 100 * 1024 * 1024
print("== cat of a 100 MB file")
timed(berth + ["sh", "-c", f"mkdir -p /tmp && head -c {size} /dev/urandom > /tmp/big"])
for name, argv in [
    ("berth exec (terminal)", berth + ["cat", "/tmp/big"]),
    ("ctr task exec (baseline, no tty)", ctr + ["task", "exec", "--exec-id", "benchcat", container_id, "cat", "/tmp/big"]),
]:
    elapsed, out = timed(argv)
    print(f"{name:<34} MB_per_s={size / elapsed / 1e6:7.1f} seconds={elapsed:6.2f} bytes_received={len(out)}")



def timed_on_terminal(argv):
    """Runs argv on a pseudo-terminal (as a person would), reading all it prints."""
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    received = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except OSError:
            break
        if not chunk:
            break
        received += len(chunk)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0, received


for name, argv in [
    ("berth exec on a terminal", berth + ["cat", "/tmp/big"]),
    ("ctr task exec -t (baseline)", ctr + ["task", "exec", "-t", "--exec-id", "benchcat2", container_id, "cat", "/tmp/big"]),
]:
    elapsed, received = timed_on_terminal(argv)
    print(f"{name:<34} MB_per_s={size / elapsed / 1e6:7.1f} seconds={elapsed:6.2f} bytes_received={received}")
timed(berth + ["rm", "/tmp/big"])
