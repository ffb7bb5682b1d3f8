"""The seed article's training loop in Python PyTorch, as a user would run it: TensorDataset +
DataLoader(batch_size=64, shuffle=True), Adam lr 1e-3, cross-entropy, validation every epoch,
test at the end. Used by the benchmark (npm run bench) and the GPU check as the reference.

Prints one JSON object: images/s for training and evaluation, accuracies, thread settings.
"""
import argparse
import gzip
import json
import os
import resource
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class LeNet5(nn.Module):  # the seed's class, verbatim in structure
    def __init__(self, num_classes=10):
        super(LeNet5, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=2)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5, stride=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU(inplace=True)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        x = self.fc3(x)
        return x


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndims)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndims:]), dtype=torch.uint8).reshape(dims)


def find(data_dir, base):
    for name in (base, base + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise SystemExit(f"missing {base} in {data_dir}")


def load(data_dir, prefix):
    images = read_idx(find(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(data_dir, f"{prefix}-labels-idx1-ubyte")).long()
    # ToTensor() then Normalize((0.5,), (0.5,))
    return ((images.float() / 255 - 0.5) / 0.5).unsqueeze(1), labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("LENET5_DATA", "/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-batches", type=int, default=0, help="stop each epoch after this many batches (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x, y = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(y), generator=generator)
    n_train = round(len(y) * 0.9)
    train_ds = TensorDataset(x[order[:n_train]], y[order[:n_train]])
    val_ds = TensorDataset(x[order[n_train:]], y[order[n_train:]])
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
    val_loader = DataLoader(val_ds, batch_size=1000)
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=1000)

    model = LeNet5(num_classes=10).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)

    def evaluate(loader):
        model.eval()
        loss, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                outputs = model(images)
                _, predicted = torch.max(outputs.data, 1)
                loss += criterion(outputs, labels).item() * len(labels)
                correct += (predicted == labels).sum().item()
                seen += len(labels)
        return loss / seen, correct / seen, seen / (time.perf_counter() - start)

    epochs = []
    train_images, train_seconds, train_user_cpu = 0, 0.0, 0.0
    for epoch in range(args.epochs):
        model.train()
        total_loss, batches = 0.0, 0
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        user_cpu_start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            batches += 1
            train_images += len(labels)
            if args.max_batches and batches >= args.max_batches:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - start
        train_user_cpu += resource.getrusage(resource.RUSAGE_SELF).ru_utime - user_cpu_start
        val_loss, val_acc, _ = evaluate(val_loader)
        epochs.append({"epoch": epoch + 1, "trainLoss": total_loss / batches, "valLoss": val_loss, "valAccuracy": val_acc})
    test_loss, test_acc, eval_ips = evaluate(test_loader)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS"), "device": str(device),
        "trainImagesPerSecond": train_images / train_seconds, "evalImagesPerSecond": eval_ips,
        "trainUserCpuPer1000": 1000 * train_user_cpu / train_images,
        "epochs": epochs, "testLoss": test_loss, "testAccuracy": test_acc,
    }))


if __name__ == "__main__":
    main()
