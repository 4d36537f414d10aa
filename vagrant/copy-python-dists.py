"""Copies installed Python distributions, with everything they require, from
this interpreter into a root filesystem's /usr/local, as `pip install` would
have put them there; script shebangs are pointed at the guest's python3.
vagrant/build-box.sh uses it so the box gets the host's awscli and boto3
without a trip to PyPI.

Usage: python3 copy-python-dists.py ROOTFS DIST...
"""

import re
import shutil
import sys
from importlib import metadata
from pathlib import Path


def required(dist):
    """Names of the distributions `dist` requires (extras left out)."""
    for req in dist.requires or []:
        name, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        yield re.match(r"[A-Za-z0-9._-]+", name.strip()).group(0)


def main(rootfs, wanted):
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(rootfs) / "usr/local/lib" / ver / "dist-packages"
    bindir = Path(rootfs) / "usr/local/bin"
    seen, todo = set(), list(wanted)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            # A requirement whose marker excludes this Python: not installed here.
            if name in wanted:
                sys.exit(f"copy-python-dists: {name} is not installed")
            continue
        todo.extend(required(dist))
        for f in dist.files or []:
            src = Path(f.locate())
            if src.suffix == ".pyc" or not src.is_file():
                continue
            parts = Path(f).parts
            if parts[0] == "..":
                # Scripts, recorded relative to site-packages (../../../bin/aws).
                dst = bindir / src.name
                bindir.mkdir(parents=True, exist_ok=True)
                data = src.read_bytes()
                if data.startswith(b"#!") and b"python" in data.split(b"\n", 1)[0]:
                    data = b"#!/usr/bin/python3\n" + data.split(b"\n", 1)[1]
                dst.write_bytes(data)
                dst.chmod(0o755)
            else:
                dst = site / f
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        print(f"  {dist.metadata['Name']} {dist.version}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
