"""A pre-training run opened for looking at: its config, its newest checkpoint, and an embedding network.

The embeddings of a slice are the two things the image branch sees: the encoder's globally pooled
bottleneck (``features``, C values) and the image head's L2-normalised projection (``z``, the vectors the
contrast pulls together by meta label). Nothing is trained here; the network runs in eval mode, without
gradients, in batches, so memory stays bounded for any number of slices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.config import PretrainConfig, from_saved_json, load_json
from gcl_engine.errors import CheckpointError, InputError
from gcl_engine.insight.files import insight_dir
from gcl_engine.models import GCLPretrainNet
from gcl_engine.run_layout import PRETRAIN_FORMAT, RunLayout
from gcl_engine.runtime import CancelToken, is_cancelled, select_device

BATCH = 64


@dataclass
class Embeddings:
    features: np.ndarray  # (n, C) float32: pooled encoder bottleneck, L2-normalised
    z: np.ndarray  # (n, D) float32: the image head's projection (unit norm)


def run_root(path: str | Path) -> Path:
    """The run folder of ``path``: the folder itself, or the run holding a checkpoint file."""
    p = Path(path)
    for folder in (p, p.parent, p.parent.parent):
        if RunLayout(folder).is_resumable():  # its config and a checkpoint
            return folder
    raise InputError(p, "not a pre-training run folder (config.json and last.pt are needed)")


class RunModel:
    """The run's config and its last checkpoint's encoder + image head, ready to embed slices."""

    def __init__(self, root: Path, config: PretrainConfig, state: dict, device: str = "auto", key: str = ""):
        self.root, self.config = root, config
        self.step = int(state.get("step", 0))
        self.meta_labels = list(state.get("meta_labels", []))
        self.device = select_device(device)
        net = GCLPretrainNet(config.model, config.pixel_level, config.pixel_features)
        try:
            net.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{RunLayout(root).last_checkpoint}: does not fit the run's config ({exc})") from exc
        self.net = net.to(self.device).eval()
        self.key = key  # identifies the checkpoint: files derived from it are keyed by it

    @classmethod
    def load(cls, run: str | Path, device: str = "auto") -> RunModel:
        root = run_root(run)
        layout = RunLayout(root)
        state = load_checkpoint(layout.last_checkpoint, PRETRAIN_FORMAT)
        saved = state.get("config_json")
        config = from_saved_json(PretrainConfig, saved) if saved else load_json(PretrainConfig, layout.config)
        return cls(root, config, state, device, checkpoint_key(layout.last_checkpoint))

    @property
    def insight_dir(self) -> Path:
        return insight_dir(self.root)

    @torch.no_grad()
    def embed(self, slices: np.ndarray, cancel: CancelToken | None = None, on_batch=None) -> Embeddings:
        """(n, S, S) preprocessed slices -> :class:`Embeddings`; ``on_batch(done)`` after each batch."""
        feats, zs = [], []
        for lo in range(0, len(slices), BATCH):
            if is_cancelled(cancel):
                break
            x = torch.as_tensor(np.asarray(slices[lo:lo + BATCH], dtype=np.float32)).unsqueeze(1).to(self.device)
            bottleneck = self.net.encoder(x)[-1].float()
            feats.append(torch.nn.functional.normalize(bottleneck.mean(dim=(2, 3)), dim=1).cpu().numpy())
            zs.append(self.net.image_head(bottleneck).float().cpu().numpy())
            if on_batch is not None:
                on_batch(min(lo + BATCH, len(slices)))
        c, d = self.config.model.encoder_channels, self.config.model.image_proj_dim
        return Embeddings(np.concatenate(feats) if feats else np.zeros((0, c), np.float32),
                          np.concatenate(zs) if zs else np.zeros((0, d), np.float32))


def checkpoint_key(path: Path) -> str:
    """Identifies one checkpoint file's content cheaply (size, mtime, first MiB): derived files keyed by it."""
    st = path.stat()
    digest = hashlib.sha1(f"{st.st_size}|{st.st_mtime_ns}".encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:20]
