"""Writes hostile or broken .pth files for the loader tests.
Usage: bad_files.py KIND PATH MARKER, or bad_files.py --many DIR KIND... (DIR/KIND.pth each)

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


def recompress(path, method):
    with zipfile.ZipFile(path) as z:
        records = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in records.items():
            z.writestr(name, data)


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
    if sys.argv[1] == "--many":
        # bad_files.py --many DIR KIND...: writes DIR/KIND.pth for each kind (one Python start for all).
        folder = sys.argv[2]
        for kind in sys.argv[3:]:
            write(kind, os.path.join(folder, f"{kind}.pth"), os.path.join(folder, f"{kind}.executed"))
    else:
        write(*sys.argv[1:])


def write(kind, path, marker):
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
    elif kind == "dag":
        # 25 levels of (a, a): 2**25 paths to one tensor through 26 objects, as pickle's memo writes them.
        shared = (torch.zeros(1),)
        for _ in range(25):
            shared = (shared, shared)
        torch.save({"x": shared}, path)
    elif kind in ("amp", "amp-deflated"):
        # 3000 keys of one 4 MB storage: 4 MB on disk, 12 GB if every key became its own copy.
        big = torch.zeros(1 << 20)
        torch.save({f"k{i}": big for i in range(3000)}, path)
        if kind == "amp-deflated":
            recompress(path, zipfile.ZIP_DEFLATED)
    elif kind == "amp-optimizer":
        # A checkpoint whose optimizer state names one 4 MB storage 6000 times (3000 "parameters").
        big = torch.zeros(1 << 20)
        group = dict(torch.optim.Adam(LeNet5().parameters()).state_dict()["param_groups"][0], params=list(range(3000)))
        state = {i: {"step": torch.tensor(1.0), "exp_avg": big, "exp_avg_sq": big} for i in range(3000)}
        torch.save({"epoch": 1, "model_state_dict": LeNet5().state_dict(),
                    "optimizer_state_dict": {"state": state, "param_groups": [group]}, "loss": 0.5}, path)
    elif kind == "strided-views":
        # 100 different every-other-element views of one 66 KB storage: each needs its own copy.
        base = torch.arange(16384 + 100, dtype=torch.float32)
        torch.save({f"v{i}": base[i:i + 16384:2] for i in range(100)}, path)
    elif kind in ("complex64", "uint16", "float8_e4m3fn"):
        torch.save({"x": torch.zeros(2, dtype=getattr(torch, kind))}, path)
    elif kind == "escape-names":
        state = dict(state)
        state["\x1b]0;pwned\x07\x1b[2J\x1b[31mred"] = torch.zeros(1)
        torch.save(state, path)
    elif kind.startswith("optimizer-"):
        # A checkpoint of the seed's model after one step of torch.optim.<name>.
        model = LeNet5()
        optimizer = getattr(torch.optim, kind[len("optimizer-"):])(model.parameters(), lr=0.01)
        model(torch.zeros(2, 1, 28, 28)).sum().backward()
        optimizer.step()
        torch.save({"epoch": 1, "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": 0.5}, path)
    elif kind in ("epoch-string", "epoch-huge"):
        # An Adam checkpoint whose epoch is not a whole number.
        model = LeNet5()
        optimizer = torch.optim.Adam(model.parameters())
        torch.save({"epoch": "one" if kind == "epoch-string" else 1e30, "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": 0.5}, path)
    elif kind == "bad-opcode":
        zip_with(path, {"archive/data.pkl": b"\x80\x02\xff.", "archive/version": b"3\n"})
    else:
        zip_with(path, {"archive/data.pkl": unsafe_pickle(kind, marker), "archive/version": b"3\n"})


if __name__ == "__main__":
    main()
