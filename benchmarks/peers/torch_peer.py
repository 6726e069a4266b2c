"""PyTorch eager on the CPU: ``nn.Sequential``, ``torch.optim.SGD`` (no momentum), the standard loop.

Torch runs with one intra-op thread unless ``NNJAX_BENCH_TORCH_THREADS`` (set by
``benchmarks.run --torch-threads``) says otherwise: at these sizes a second
thread buys little on 2 cores, and when other processes share the cores its
spinning OpenMP threads made runs 40-100x slower in our measurements.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits, batch_slices
from benchmarks.workloads import Workload

__all__ = ["PEERS", "TorchTrainer", "torch_model"]


def torch_model(sizes, activation: str, params) -> torch.nn.Sequential:
    """``nn.Linear`` layers holding nnjax's initial weights (torch stores ``(n_out, n_in)``)."""
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(a, b)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(params[i]["w"].T)))  # a writable copy
            linear.bias.copy_(torch.from_numpy(np.array(params[i]["b"])))
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU() if activation == "relu" else torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


class TorchTrainer(Trainer):
    fresh_objects = "a new nn.Sequential and torch.optim.SGD (train builds them on every call)"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.x = torch.from_numpy(workload.x_train)
        binary = workload.loss == "binary_cross_entropy"
        self.y = torch.from_numpy(workload.y_train.astype(np.float32 if binary else np.int64))
        if binary:
            self.loss_fn = lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y)
        else:
            self.loss_fn = F.cross_entropy
        self.models = [None] * workload.members

    def train_member(self, member: int, seed: int) -> None:
        w = self.workload
        model = torch_model(w.sizes, w.activation, w.init_params[member])
        optimizer = torch.optim.SGD(model.parameters(), lr=w.learning_rate, momentum=0.0)
        generator = torch.Generator().manual_seed(seed * 1009 + member)
        for _ in range(w.epochs):
            perm = torch.randperm(w.n_train, generator=generator)
            xp, yp = self.x[perm], self.y[perm]
            total = torch.zeros(())
            for s in batch_slices(w.n_train, w.batch_size):
                optimizer.zero_grad(set_to_none=True)
                loss = self.loss_fn(model(xp[s]), yp[s])
                loss.backward()
                optimizer.step()
                total += loss.detach() * (s.stop - s.start)
            float(total) / w.n_train  # the epoch's mean loss, as a real loop would log it
        self.models[member] = model

    def test_accuracy(self, member: int) -> float:
        with torch.no_grad():
            logits = self.models[member](torch.from_numpy(self.workload.x_test)).numpy()
        return accuracy_of_logits(logits, self.workload.y_test)


THREADS = int(os.environ.get("NNJAX_BENCH_TORCH_THREADS", "1"))
torch.set_num_threads(THREADS)

PEERS = (
    Peer(f"PyTorch eager ({THREADS} thread{'s' if THREADS > 1 else ''})", f"torch {torch.__version__}", TorchTrainer,
         ("w1", "w2", "w4", "w5"), "eager"),
)
