"""What LibTorch's own kernels allow, with no data loading and no Python loop around them: the
seed's LeNet5 on random data, (1) a training step (forward, cross-entropy, backward, Adam) at batch
64 and (2) an inference forward pass at batch 1000, at the given thread count. Used by the benchmark
(npm run bench) to show how close each loop is to the kernels, and why some targets are out of reach.

Prints one JSON object: images/s for both, and torch.profiler's top operators for the training step.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from seed_loop import LeNet5


def rate(step, batch, seconds):
    for _ in range(20):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LeNet5()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def train_step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    train = rate(train_step, 64, args.seconds)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(50):
            train_step()
    events = [e for e in profile.key_averages() if e.key.startswith("aten::") or e.key.startswith("Optimizer")]
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]

    model.eval()
    batch = torch.randn(1000, 1, 28, 28)
    with torch.inference_mode():
        forward = rate(lambda: model(batch), 1000, args.seconds)
    print(json.dumps({
        "threads": torch.get_num_threads(),
        "trainStepImagesPerSecond": train,
        "forwardImagesPerSecond": forward,
        "trainProfile": [{"op": e.key, "share": e.self_cpu_time_total / total} for e in top],
    }))


if __name__ == "__main__":
    main()
