"""Python side of the interop tests: runs real PyTorch (2.x from .venv, or Debian's 1.13) against
files written by Node, and writes files for Node to read. Prints one JSON object.

  check-state PTH INPUT          load with weights_only=True + strict load_state_dict; logits and tensor digests
  save-state PTH SEED INPUT      torch.save(model.state_dict()) of a seeded model; its logits
  step PTH IMAGES LABELS OUT     resume a checkpoint (model + Adam/SGD), one optimizer step on the batch, save state_dict
  save-checkpoint PTH IMAGES LABELS STEPS OPT
                                 train STEPS steps on the batch from a seeded model, save a checkpoint
  save-raw PTH KIND              write special files: views, shared storages, float64/float16/bfloat16,
                                 keys prefixed module. or _orig_mod.; any other KIND: the plain state_dict
"""
import hashlib
import inspect
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bench"))
from seed_loop import LeNet5  # noqa: E402  (the seed's class)


def load(path, checkpoint=False):
    """torch.load with weights_only=True, the default from PyTorch 2.6. PyTorch 1.13 has the flag,
    but its weights-only unpickler lacks the BINFLOAT opcode that every checkpoint (lr, betas, loss)
    needs, its own files included, so 1.13 loads checkpoints with its default, plain torch.load."""
    old = int(torch.__version__.split(".")[0]) < 2
    if "weights_only" in inspect.signature(torch.load).parameters and not (checkpoint and old):
        return torch.load(path, weights_only=True)
    return torch.load(path)


def read_input(path):
    data = open(path, "rb").read()
    return torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(-1, 1, 28, 28)


def read_batch(images_path, labels_path):
    pixels = torch.frombuffer(bytearray(open(images_path, "rb").read()), dtype=torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.frombuffer(bytearray(open(labels_path, "rb").read()), dtype=torch.uint8).long()
    return (pixels.float() / 255 - 0.5) / 0.5, labels


def digest(tensor):
    """sha256 of the tensor's float32 bytes (little-endian), to compare with Node bit for bit."""
    return hashlib.sha256(bytes(tensor.detach().float().contiguous().flatten().view(torch.uint8).tolist())).hexdigest()


def make_optimizer(model, kind):
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=0.001)


def main():
    command, *args = sys.argv[1:]
    out = {"torch": torch.__version__}
    if command == "check-state":
        path, input_path = args
        state = load(path)
        model = LeNet5(num_classes=state["fc3.weight"].shape[0])
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(read_input(input_path))
        out.update(type=type(state).__name__, keys=list(state.keys()),
                   shapes={k: list(v.shape) for k, v in state.items()},
                   dtypes={k: str(v.dtype) for k, v in state.items()},
                   devices={k: str(v.device) for k, v in state.items()},
                   digests={k: digest(v) for k, v in state.items()},
                   logits=logits.flatten().tolist())
    elif command == "save-state":
        path, seed, input_path = args
        torch.manual_seed(int(seed))
        model = LeNet5()
        model.eval()
        torch.save(model.state_dict(), path)
        with torch.no_grad():
            out["logits"] = model(read_input(input_path)).flatten().tolist()
    elif command == "save-checkpoint":
        path, images_path, labels_path, steps, kind = args
        torch.manual_seed(1)
        model = LeNet5()
        optimizer = make_optimizer(model, kind)
        x, y = read_batch(images_path, labels_path)
        loss = None
        for _ in range(int(steps)):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        torch.save({"epoch": int(steps), "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": loss.item()}, path)
    elif command == "step":
        path, images_path, labels_path, out_path = args
        checkpoint = load(path, checkpoint=True)
        model = LeNet5()
        model.load_state_dict(checkpoint["model_state_dict"])
        kind = "adam" if "betas" in checkpoint["optimizer_state_dict"]["param_groups"][0] else "sgd"
        optimizer = make_optimizer(model, kind)
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        x, y = read_batch(images_path, labels_path)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        torch.save(model.state_dict(), out_path)
        out.update(epoch=checkpoint["epoch"], loss=checkpoint["loss"], kind=kind)
    elif command == "save-raw":
        path, kind = args
        torch.manual_seed(2)
        state = LeNet5().state_dict()
        if kind == "float64":
            state = {k: v.double() for k, v in state.items()}
        elif kind == "float16":
            state = {k: v.half() for k, v in state.items()}
        elif kind == "bfloat16":
            state = {k: v.bfloat16() for k, v in state.items()}
        elif kind in ("module", "_orig_mod"):
            # What nn.DataParallel / DDP ("module.") and torch.compile ("_orig_mod.") models' state_dicts hold.
            state = {f"{kind}.{k}": v for k, v in state.items()}
        elif kind == "shared":
            # Every tensor a view into one storage, with offsets, and fc1.weight transposed (non-contiguous).
            flat = torch.cat([v.flatten() for v in state.values()])
            shared, offset = {}, 0
            for k, v in state.items():
                shared[k] = flat[offset:offset + v.numel()].view(v.shape)
                offset += v.numel()
            t = state["fc1.weight"].t().contiguous()
            shared["fc1.weight"] = t.t()
            state = shared
        torch.save(state, path)
        # Every value as PyTorch reads it (row-major through the view, converted to float32).
        out["values"] = {k: v.float().flatten().tolist() for k, v in state.items()}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
