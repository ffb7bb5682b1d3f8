"""Python side of the schedule tests: PyTorch's own lr_scheduler classes. Prints one JSON object.

  states CASES METRICS                 for each [KIND, ARGS] of CASES: the learning rate of each epoch of a
                                       fresh schedule (one per metric), and its state_dict after them with
                                       each value's type
  resume PTH METRICS                   load a checkpoint (weights_only=True), rebuild Adam and the scheduler
                                       from it, and give the learning rate of each following epoch
  save PTH KIND ARGS METRICS           a checkpoint (seeded model, Adam, the scheduler stepped once per metric)

KIND is step|cosine|plateau; ARGS a JSON object of constructor arguments; METRICS a JSON list of
validation losses (ignored by step and cosine, which step once per entry all the same).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bench"))
from seed_loop import LeNet5  # noqa: E402  (the seed's class)

KINDS = {"step": torch.optim.lr_scheduler.StepLR, "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
         "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau}


def train_step(model, optimizer):
    """One real optimizer step (a zero batch), so the order optimizer.step() -> scheduler.step() holds."""
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(torch.zeros(2, 1, 28, 28)), torch.zeros(2, dtype=torch.long)).backward()
    optimizer.step()


def run(model, optimizer, scheduler, metrics):
    lrs = []
    for metric in metrics:
        lrs.append(optimizer.param_groups[0]["lr"])
        train_step(model, optimizer)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        else:
            scheduler.step()
    return lrs


def typed(state):
    """Each value with its Python type name; infinities as the string "inf" (JSON has none)."""
    def plain(v):
        return "inf" if isinstance(v, float) and math.isinf(v) else [plain(x) for x in v] if isinstance(v, list) else v
    return {k: [plain(v), type(v).__name__] for k, v in state.items()}


def fresh(kind, args):
    torch.manual_seed(0)
    model = LeNet5()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.pop("lr", 0.001))
    return model, optimizer, KINDS[kind](optimizer, **args)


def main():
    command, *args = sys.argv[1:]
    out = {"torch": torch.__version__}
    if command == "states":
        cases, metrics = json.loads(args[0]), json.loads(args[1])
        out["cases"] = []
        for kind, ctor in cases:
            model, optimizer, scheduler = fresh(kind, dict(ctor))
            lrs = run(model, optimizer, scheduler, metrics)
            out["cases"].append({"lrs": lrs, "state": typed(scheduler.state_dict())})
    elif command == "resume":
        path, metrics = args[0], json.loads(args[1])
        checkpoint = torch.load(path, weights_only=True)
        model = LeNet5()
        model.load_state_dict(checkpoint["model_state_dict"])
        optimizer = torch.optim.Adam(model.parameters())
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        state = checkpoint["lr_scheduler_state_dict"]
        kind = "step" if "step_size" in state else "cosine" if "T_max" in state else "plateau"
        scheduler = KINDS[kind](optimizer, **({"step_size": 1} if kind == "step" else {"T_max": 1} if kind == "cosine" else {}))
        scheduler.load_state_dict(state)
        out["lrs"] = run(model, optimizer, scheduler, metrics)
        out["state"] = typed(state)
        out["early_stopping"] = checkpoint.get("early_stopping_state_dict")
    elif command == "save":
        path, kind, ctor, metrics = args[0], args[1], json.loads(args[2]), json.loads(args[3])
        model, optimizer, scheduler = fresh(kind, ctor)
        run(model, optimizer, scheduler, metrics)
        torch.save({"epoch": len(metrics), "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                    "loss": 0.5, "lr_scheduler_state_dict": scheduler.state_dict()}, path)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out, allow_nan=False))


if __name__ == "__main__":
    main()
