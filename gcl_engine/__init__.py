"""GCL Studio engine: headless library for GCL pre-training, few-shot fine-tuning and inference.

Never imports Qt, napari or the app; the GUI talks to it through :mod:`gcl_engine.api`.
"""

__version__ = "0.1.0"
