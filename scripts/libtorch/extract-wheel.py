# Extracts the members of a wheel that wheels.json's `take` names, for scripts/libtorch/pypi.mjs:
# torch/include/... to include/..., any .../lib/NAME to lib/NAME, under DEST. Prints on stdout the
# size and SHA-256 of each file written (the cache manifest's record), hashed as it is written:
# one pass over 500 MB and 9,600 small headers, a third of the time of unzipping in Node and
# hashing afterwards. Run by the Python whose pip fetched the wheel, isolated (-I).
#
# Usage: python3 -I extract-wheel.py WHEEL DEST TAKE_JSON
import hashlib
import json
import os
import sys
import zipfile


def target_of(name):
    if name.startswith("torch/include/"):
        return "include/" + name[len("torch/include/") :]
    return "lib/" + name.rsplit("/", 1)[-1]


def wanted(name, take):
    return not name.endswith("/") and any(name.startswith(m) if m.endswith("/") else name == m for m in take)


def main(wheel, dest, take):
    # DEST is a fresh folder of ours with no links in it, so normpath (no file system calls, unlike
    # realpath: 9,600 headers) is enough to keep every member inside it.
    root = os.path.normpath(os.path.abspath(dest))
    files = {}
    made = set()
    missing = {m for m in take if not m.endswith("/")}
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not wanted(info.filename, take):
                continue
            missing.discard(info.filename)
            relative = target_of(info.filename)
            target = os.path.normpath(os.path.join(root, relative))
            if not target.startswith(root + os.sep):
                sys.exit(f"{wheel}: member {info.filename} would be written outside {dest}")
            folder = os.path.dirname(target)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            digest = hashlib.sha256()
            mode = 0o644 if relative.endswith(".h") else 0o755
            with archive.open(info) as source, open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            files[relative] = {"size": info.file_size, "sha256": digest.hexdigest()}
    if missing:
        sys.exit(f"{wheel} lacks {', '.join(sorted(missing))}: wheels.json does not match this wheel.")
    json.dump(files, sys.stdout)


main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
