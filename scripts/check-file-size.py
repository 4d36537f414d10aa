#!/usr/bin/env python3
"""Fails when a Rust source file holds more than MAX lines of non-test code.

Lines inside `#[cfg(test)]` items do not count, nor do test-only files: those
named `tests.rs` or `*_tests.rs`, and everything under a `tests/`, `benches/`
or `examples/` directory (the `tests` crate included). A file past the limit
usually owns two things: split it by what each part owns.

usage: scripts/check-file-size.py [ROOT]   (default: the repository root)
"""
import os
import sys

MAX = 500
SKIP_DIRS = {"target", ".git", "tests", "benches", "examples", "node_modules"}


def code_lines(text):
    """Lines outside #[cfg(test)] items (an item ends where its braces balance)."""
    lines = text.split("\n")
    count, i = 0, 0
    while i < len(lines):
        if lines[i].strip().startswith("#[cfg(test)]"):
            i += 1
            depth, opened = 0, False
            while i < len(lines):
                line = lines[i]
                depth += line.count("{") - line.count("}")
                opened = opened or "{" in line
                if (opened and depth <= 0) or (not opened and line.rstrip().endswith(";")):
                    break
                i += 1
        else:
            count += 1
        i += 1
    return count


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    over = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            if not name.endswith(".rs") or name == "tests.rs" or name.endswith("_tests.rs"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                n = code_lines(f.read())
            if n > MAX:
                over.append((n, os.path.relpath(path, root)))
    for n, path in sorted(over, reverse=True):
        print(f"{path}: {n} lines of non-test code (limit {MAX}): split it by what each part owns")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
