"""Writes hostile or broken .pth files for the loader tests. Usage: bad_files.py KIND PATH MARKER

Every "unsafe" kind is a pickle that, if executed by plain pickle, would create MARKER.
"""
import io
import os
import pickle
import sys
import zipfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bench"))
from seed_loop import LeNet5  # noqa: E402


def zip_with(path, records):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in records.items():
            z.writestr(name, data)


class Runs:
    """Pickles to a call of `func(*args)`."""
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def unsafe_pickle(kind, marker):
    command = f"touch {marker}"
    if kind == "os-system":
        return pickle.dumps({"conv1.weight": Runs(os.system, command)}, protocol=2)
    if kind == "eval":
        import builtins
        return pickle.dumps(Runs(builtins.eval, f"__import__('os').system('{command}')"), protocol=2)
    if kind in ("exec", "protocol-4"):
        import builtins
        return pickle.dumps(Runs(builtins.exec, f"import os; os.system('{command}')"), protocol=4 if kind == "protocol-4" else 2)
    if kind == "subprocess":
        import subprocess
        return pickle.dumps(Runs(subprocess.call, ["touch", marker]), protocol=2)
    if kind == "nested-reduce":
        import builtins
        return pickle.dumps(Runs(builtins.getattr, Runs(builtins.__import__, "os"), "system"), protocol=2)
    if kind == "posix-system":
        return b"\x80\x02cposix\nsystem\nq\x00X" + len(command).to_bytes(4, "little") + command.encode() + b"\x85R."
    if kind == "inst":
        return b"(X" + len(command).to_bytes(4, "little") + command.encode() + b"ios\nsystem\n."
    if kind == "newobj":
        return b"\x80\x02c__main__\nEvil\n)\x81."
    raise SystemExit(f"unknown kind {kind}")


def main():
    kind, path, marker = sys.argv[1:]
    torch.manual_seed(0)
    state = LeNet5().state_dict()
    if kind == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(LeNet5()), path)
    elif kind == "no-data-pkl":
        zip_with(path, {"archive/version": b"3\n", "archive/data/0": b"\0" * 16})
    elif kind == "short-storage":
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
            records = {n: z.read(n) for n in z.namelist()}
        key = next(n for n in records if n.endswith("data/0"))
        records[key] = records[key][:10]
        zip_with(path, records)
    elif kind == "bad-opcode":
        zip_with(path, {"archive/data.pkl": b"\x80\x02\xff.", "archive/version": b"3\n"})
    else:
        zip_with(path, {"archive/data.pkl": unsafe_pickle(kind, marker), "archive/version": b"3\n"})


if __name__ == "__main__":
    main()
