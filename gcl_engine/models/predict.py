"""Batched slice prediction shared by fine-tuning previews and slice ranking (training) and inference."""

from __future__ import annotations

import torch

from gcl_engine.data.slice_layout import SliceLayout


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, slices: torch.Tensor, layout: SliceLayout,
                          batch_size: int = 16) -> torch.Tensor:
    """(n, S, S) normalised slices, or (n, C, S, S) with neighbours as channels -> (n, K, H, W) softmax
    probabilities on the stored in-plane grid (``layout``: how the slices were oriented and scaled; undone)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, slices.shape[0], batch_size):
        x = slices[i:i + batch_size]
        x = (x.unsqueeze(1) if x.ndim == 3 else x).to(device)
        outs.append(layout.to_source(torch.softmax(model(x).float(), dim=1).cpu()))
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0)


def predict_labels(model: torch.nn.Module, slices: torch.Tensor, layout: SliceLayout,
                   batch_size: int = 16) -> torch.Tensor:
    """(n, H, W) argmax label maps on the stored grid."""
    return predict_probabilities(model, slices, layout, batch_size).argmax(1)
