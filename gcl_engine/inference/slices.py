"""Batched slice prediction shared by fine-tuning previews and the Segmenter's torch backend."""

from __future__ import annotations

import torch

from gcl_engine.data.orientation import InPlaneOrientation
from gcl_engine.data.preprocessing import resize_back


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, slices: torch.Tensor, out_shape: tuple[int, int],
                          batch_size: int = 16, orientation: InPlaneOrientation | None = None) -> torch.Tensor:
    """(n, S, S) normalised slices -> (n, K, H, W) softmax probabilities in the source in-plane shape and
    layout (``orientation``: how the slices were oriented before resizing; undone here)."""
    orient = orientation or InPlaneOrientation()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, slices.shape[0], batch_size):
        x = slices[i:i + batch_size].unsqueeze(1).to(device)
        probs = resize_back(torch.softmax(model(x).float(), dim=1), orient.oriented_shape(out_shape))
        outs.append(orient.undo(probs).cpu())
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0)


def predict_labels(model: torch.nn.Module, slices: torch.Tensor, out_shape: tuple[int, int],
                   batch_size: int = 16, orientation: InPlaneOrientation | None = None) -> torch.Tensor:
    """(n, H, W) argmax label maps in the source layout."""
    return predict_probabilities(model, slices, out_shape, batch_size, orientation).argmax(1)
