"""``gcl``: every engine capability as a console command (the GUI's child processes run these too)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys

from gcl_engine import api, cli_insight, cli_painting
from gcl_engine.cli_output import TerminalReporter

AXES = {"k": 0, "j": 1, "i": 2}
log = logging.getLogger("gcl_engine.cli")  # not __name__: it is "__main__" under python -m


def _logging_options(defaults: bool) -> argparse.ArgumentParser:
    """--verbose / --log-file, accepted before or after the command (after it, they only override)."""
    p = argparse.ArgumentParser(add_help=False)
    keep = {} if defaults else {"default": argparse.SUPPRESS}
    p.add_argument("--verbose", "-v", action="store_true", help="log debug detail, and print the log on stderr", **keep)
    p.add_argument("--log-file", help="log here instead of the user log folder's gcl-studio.log", **keep)
    return p


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON config file (command-line options override its fields)")
    p.add_argument("--events", choices=["text", "json"], default="text", help="json: one event per line on stdout")
    p.add_argument("--cancel-file", help="stop cleanly (checkpoint saved) when this file appears")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="CPU threads (default: half the cores, at least one)")
    p.add_argument("--background", action="store_true",
                   help="run as a GUI's worker: lower CPU priority")
    p.add_argument("--size", type=int, help="in-plane size the slices are resampled to (128 CPU, 224 GPU)")
    p.add_argument("--field-of-view", type=float, metavar="MM",
                   help="resample slices at MM/size mm per pixel, centred (default: each slice's whole field of view)")
    p.add_argument("--base-channels", type=int, help="U-Net width b (16 CPU, 32 GPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gcl", description="GCL Studio engine", parents=[_logging_options(True)])
    parser.add_argument("--version", action="version", version=f"gcl-studio {api.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = _with_parents(sub.add_parser, _logging_options(False))  # every command takes them too
    s = sub.add_parser("scan", help="list the volumes of a folder, the files skipped and the meta labels")
    s.add_argument("folder")
    s.add_argument("--json", action="store_true")
    s.add_argument("--cache", help="also cache normalised slices here")
    s.add_argument("--size", type=int, default=128)
    p = sub.add_parser("pretrain", help="GCL pre-training on a folder of unlabeled scans")
    p.add_argument("folder", nargs="?")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl)")
    p.add_argument("--method", help=f"one of {', '.join(api.METHODS)} or single:<meta label>")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--cache")
    p.add_argument("--volumes-per-batch", type=int)
    p.add_argument("--mitigator", choices=["fast", "exact"])
    p.add_argument("--filter", dest="gradient_filter", choices=["A", "B", "none"])
    p.add_argument("--meta-labels", help="comma-separated subset of subject,position,phase,series")
    p.add_argument("--meta-csv", help="CSV sidecar: a 'file' column plus one column per extra meta label")
    p.add_argument("--checkpoint-every", type=int)
    _add_job_options(p)
    f = sub.add_parser("finetune", help="fine-tune on a few annotated slices")
    f.add_argument("--image")
    f.add_argument("--labels", help="label volume on the image's grid; annotated slices are those holding labels")
    f.add_argument("--slices", help="explicit annotated slice indices, e.g. 3,17,40")
    f.add_argument("--axis", choices=list(AXES), help="slicing axis in ITK index terms (default k)")
    f.add_argument("--pretrained", help="pre-training checkpoint (none: from scratch)")
    f.add_argument("--init-model", help="continue from this fine-tuned model")
    f.add_argument("--class-names", help="comma-separated, background first")
    f.add_argument("--out", help="model file (.pt)")
    f.add_argument("--preview-slices", help="emit Preview events for these slices")
    f.add_argument("--unknown-value", type=int,
                   help=f"label value of unpainted voxels (scribbles; GCL Studio writes {api.UNKNOWN_LABEL}): "
                        "never seen by the loss. Default: unpainted voxels of a painted slice are background")
    _add_job_options(f)
    r = sub.add_parser("predict", help="segment a volume or a folder, write NIfTI masks")
    r.add_argument("--model", required=True, help="fine-tuned .pt or exported .onnx")
    r.add_argument("--image", required=True,
                   help="a scan file, a DICOM folder or a folder of scans (every time point and series)")
    r.add_argument("--out", required=True,
                   help="a folder (masks as <volume>_seg.nii.gz, sub-folders kept) or, for a single volume, a "
                        ".nii.gz file")
    r.add_argument("--backend", choices=["auto", "torch", "onnxruntime"], default="auto")
    r.add_argument("--device", default="auto")
    r.add_argument("--largest-component", action="store_true")
    r.add_argument("--threads", type=int, help="CPU threads (default: half the cores, at least one)")
    r.add_argument("--format", choices=api.MASK_FORMATS,
                   help="nifti (the --out suffix: .nii.gz, .nrrd, .mha) or dicom-seg (a DICOM series in, a .dcm "
                        "SEG out, referencing it); default: dicom-seg when --out ends in .dcm, else nifti")
    cli_painting.add_parsers(sub)
    cli_insight.add_parsers(sub)
    e = sub.add_parser("export-onnx", help="export a fine-tuned model to ONNX and check parity")
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True)
    return parser


def _with_parents(add_parser, *parents: argparse.ArgumentParser):
    def add(name: str, **kwargs):
        return add_parser(name, parents=[*kwargs.pop("parents", []), *parents], **kwargs)
    return add


def _overrides(args: argparse.Namespace, names: list[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _csv_ints(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(t) for t in text.split(",") if t.strip())


def _shape_overrides(cfg, args: argparse.Namespace) -> dict:
    fields = {}
    if args.size:
        fields["preprocess"] = dataclasses.replace(cfg.preprocess, size=args.size)
    if args.field_of_view:
        fields["preprocess"] = dataclasses.replace(fields.get("preprocess", cfg.preprocess),
                                                   field_of_view_mm=args.field_of_view)
    if args.base_channels:
        fields["model"] = dataclasses.replace(cfg.model, base_channels=args.base_channels)
    return fields


def pretrain_config(args: argparse.Namespace) -> api.PretrainConfig:
    cfg = api.load_json(api.PretrainConfig, args.config) if args.config else api.PretrainConfig()
    fields = _overrides(args, ["out", "method", "cache", "volumes_per_batch", "mitigator", "gradient_filter",
                               "meta_csv", "checkpoint_every", "device", "steps", "seed", "threads"])
    if args.folder:
        fields["folder"] = args.folder
    if args.meta_labels:
        fields["meta_labels"] = tuple(m.strip() for m in args.meta_labels.split(","))
    fields.update(_shape_overrides(cfg, args))
    cfg = dataclasses.replace(cfg, **fields)
    if not cfg.folder or not cfg.out:
        raise api.ConfigError("pretrain needs a scan FOLDER and --out RUN")
    return cfg


def finetune_config(args: argparse.Namespace) -> api.FinetuneConfig:
    cfg = api.load_json(api.FinetuneConfig, args.config) if args.config else api.FinetuneConfig()
    fields = _overrides(args, ["image", "labels", "pretrained", "init_model", "out", "device", "steps", "seed",
                               "threads", "unknown_value"])
    if args.slices:
        fields["slices"] = _csv_ints(args.slices)
    if args.preview_slices:
        fields["preview_slices"] = _csv_ints(args.preview_slices)
    if args.class_names:
        fields["class_names"] = tuple(n.strip() for n in args.class_names.split(","))
    fields.update(_shape_overrides(cfg, args))
    if args.axis:
        fields["preprocess"] = dataclasses.replace(fields.get("preprocess", cfg.preprocess), axis=AXES[args.axis])
    cfg = dataclasses.replace(cfg, **fields)
    if not cfg.image or not cfg.labels or not cfg.out:
        raise api.ConfigError("finetune needs --image, --labels and --out")
    return cfg


def _apply_background(args: argparse.Namespace, cfg):
    """A GUI's child process must not starve the window's event loop on a small machine."""
    if not getattr(args, "background", False):
        return cfg
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    return cfg


def _cancel_token(args: argparse.Namespace) -> api.CancelToken:
    token = api.FileCancelToken(args.cancel_file) if getattr(args, "cancel_file", None) else api.CancelToken()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: token.cancel())
    return token


def _sink(args: argparse.Namespace):
    if getattr(args, "events", "text") == "json":
        def emit_json(event: api.Event) -> None:
            sys.stdout.write(event.to_json() + "\n")
            sys.stdout.flush()
        return emit_json
    return TerminalReporter()


def run_scan(args) -> int:
    pre = api.PreprocessConfig(size=args.size)
    result = api.scan_folder(args.folder, cache=args.cache, preprocess=pre,
                             on_event=None if args.json else TerminalReporter())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        from gcl_engine.cli_output import print_scan

        print_scan(result)
    return 0 if result.volumes else 1


def run_pretrain(args) -> int:
    cfg = _apply_background(args, pretrain_config(args))
    result = api.pretrain(cfg, on_event=_sink(args), cancel=_cancel_token(args), resume=args.resume)
    if args.events != "json":
        print(f"{result.status}: {result.steps_done} steps, checkpoint {result.checkpoint}")
    return 0


def run_finetune(args) -> int:
    cfg = _apply_background(args, finetune_config(args))
    result = api.finetune(cfg, on_event=_sink(args), cancel=_cancel_token(args))
    if args.events != "json":
        print(f"{result.status}: {result.steps_done} steps on slices {result.annotated_slices}, "
              f"model {result.model_path}")
    return 0


def run_predict(args) -> int:
    """A file, a DICOM folder or a folder of scans (walked like ``gcl scan``): one mask per volume."""
    config = api.PredictConfig(backend=args.backend, device=args.device, largest_component=args.largest_component,
                               threads=args.threads or api.default_threads())
    mask_format = args.format or ("dicom-seg" if args.out.lower().endswith(".dcm") else "nifti")
    if mask_format == "dicom-seg":  # one DICOM series in, one SEG file out
        if not args.out.lower().endswith(".dcm"):
            raise api.ConfigError(f"--format dicom-seg writes one .dcm file; --out {args.out} does not end in .dcm")
        seg = api.Segmenter.load(args.model, config)
        try:
            volume = api.load_volume(args.image)
            pred = seg.predict(volume)
            written = api.export_mask(pred.labels, volume, args.out, pred.class_names, mask_format, model=args.model)
        except api.InputError as exc:  # the scan cannot be predicted or referenced: skipped, as in a folder
            print(f"gcl predict: skipped {exc}", file=sys.stderr)
            return 1
        print(f"{args.image} -> {written} ({seg.backend_name})")
        return 0
    result = api.predict_folder(args.model, args.image, args.out, on_event=TerminalReporter(),
                                cancel=_cancel_token(args), config=config)
    for mask in result.masks:
        print(f"{mask.source} -> {mask.mask} ({result.backend})")
    for skipped in result.skipped:  # one bad scan in a folder does not stop the others
        print(f"gcl predict: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if not result.masks and not result.skipped:
        print(f"gcl predict: no scan found in {args.image}", file=sys.stderr)
        return 1
    return 1 if result.skipped or result.status != "completed" else 0


def run_export(args) -> int:
    report = api.export_onnx(args.model, args.out)
    print(f"wrote {report.path} (opset {report.opset}); largest |torch - onnxruntime| logit difference "
          f"{report.max_abs_diff:.2e} on {', '.join(report.providers)}")
    return 0


COMMANDS = {"scan": run_scan, "pretrain": run_pretrain, "finetune": run_finetune, "predict": run_predict,
            "export-onnx": run_export, **cli_painting.COMMANDS,
            "map": lambda a: cli_insight.run_map(_apply_nice(a), _sink(a), _cancel_token(a)),
            "report": lambda a: cli_insight.run_report(_apply_nice(a), _sink(a), _cancel_token(a)),
            "check-fit": cli_insight.run_check_fit}


def _apply_nice(args: argparse.Namespace) -> argparse.Namespace:
    """A GUI's insight job runs below the window's priority (its threads are in its config)."""
    if getattr(args, "background", False):
        with contextlib.suppress(OSError, AttributeError):
            os.nice(10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api.configure_logging(verbose=args.verbose, log_file=args.log_file, console=args.verbose,
                          rotate=not getattr(args, "background", False), faults="stderr")
    log.info("gcl %s (engine %s, pid %d)", args.command, api.__version__, os.getpid())
    try:
        return COMMANDS[args.command](args)
    except api.GCLError as exc:
        log.error("gcl %s: %s", args.command, exc)
        if getattr(args, "events", "text") == "json":
            print(api.Log("error", str(exc)).to_json(), flush=True)
        print(f"gcl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.warning("gcl %s: interrupted", args.command)
        print(f"gcl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("gcl %s failed", args.command)
        raise


if __name__ == "__main__":
    sys.exit(main())
