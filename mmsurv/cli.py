"""Command line.

``mmsurv run [NOTEBOOK ...] [--smoke] [-p NAME=VALUE ...] [--write-ahead]``
    Execute notebooks headless and summarise their metrics.
``mmsurv generate [COHORT ...] [--size smoke|full] [--seed N] [--no-progress]``
    Write the virtual cohorts' files (slides, DICOM, NIfTI, GDC tables) into the data folder.
``mmsurv fetch MANIFEST --dest DIR``
    Download a public cohort described by a manifest in ``data_manifests/``.
``mmsurv embed COHORT_DIR --out FEATURES_DIR [--backbone NAME] [--weights PATH] [--engine local|ray] [--outlines] ...``
    Embed every tile of every slide into ``FEATURES_DIR/<extractor>/<slide_id>.h5`` (resumable);
    ``--outlines`` also writes each slide's tissue outline for QuPath (``outlines/<slide_id>.geojson``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .environment import PROJECT_ROOT

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmsurv", description="mmsurv: multimodal survival-analysis teaching kit")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless with papermill and summarise their metrics")
    run.add_argument("notebooks", nargs="*", help="names or number prefixes (e.g. 00); default: all, in order")
    run.add_argument("--smoke", action="store_true", help="small, fast settings (as the tests run)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", help="override a notebook parameter (repeatable)")
    run.add_argument("--results", type=Path, default=PROJECT_ROOT / "results", help="results folder (default: results/)")
    run.add_argument("--cell-timeout", type=int, default=3600, help="seconds any one cell may run (default 3600)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--write-ahead",
        action="store_true",
        help="write later notebooks' virtual cohorts in a low-priority background process meanwhile (pays with spare cores, not on 2)",
    )
    generate = commands.add_parser("generate", help="write the virtual cohorts' files in the real formats")
    generate.add_argument("cohorts", nargs="*", help="brca, lung_tcga, cesc, lung_ct, cesc_mri (default: all)")
    generate.add_argument("--size", choices=["smoke", "full"], default="smoke")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--data-dir", type=Path, default=None, help="default: $MMSURV_DATA or data/")
    generate.add_argument("--no-progress", action="store_true", help="no progress bars, one line per cohort (for a log file)")
    fetch = commands.add_parser("fetch", help="download a public cohort described by a manifest (resumable, md5-verified)")
    fetch.add_argument("manifest", type=Path, help="a file in data_manifests/, or its name without .toml")
    fetch.add_argument("--dest", type=Path, required=True, help="destination folder")
    fetch.add_argument("--only", action="append", default=None, metavar="SOURCE", help="fetch only this source (repeatable)")
    fetch.add_argument("--gdc-api", default=None, help="GDC API base URL (a mirror or test server)")
    fetch.add_argument("--tcia-api", default=None, help="NBIA API base URL (a mirror or test server)")
    fetch.add_argument("--retries", type=int, default=3)
    fetch.add_argument("--list", action="store_true", help="only resolve the manifest and list the files")
    embed = commands.add_parser("embed", help="embed every tile of a cohort's slides into per-slide feature files (resumable)")
    embed.add_argument("cohort", type=Path, help="a folder from mmsurv fetch / generate (its sample sheet), or any folder of slides")
    embed.add_argument("--out", type=Path, required=True, help="features folder: files go to OUT/<extractor>/<slide_id>.h5")
    embed.add_argument(
        "--backbone",
        default="resnet50",
        help="a foundation model by name (uni, uni2-h, virchow2, h-optimus-0, prov-gigapath, phikon-v2, resnet50-trunc; needs --weights), "
        "resnet18, resnet50 (default), another torchvision ResNet, small, or timm:NAME",
    )
    embed.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="a weights file you downloaded (.pth/.pt/.bin/.safetensors; for phikon-v2 its folder), e.g. a foundation model's",
    )
    embed.add_argument("--mpp", type=float, default=0.5, help="microns per pixel of the tiles (default 0.5, about 20x)")
    embed.add_argument("--tile-px", type=int, default=224, help="tile side in pixels (default 224)")
    embed.add_argument("--min-tissue", type=float, default=0.5, help="least fraction of a tile that is tissue (default 0.5)")
    embed.add_argument("--batch-size", type=int, default=64)
    embed.add_argument("--device", default="auto", help="auto (default), cuda, mps or cpu")
    embed.add_argument("--engine", choices=["local", "ray"], default="local", help="local (one process) or ray (needs the scale extra)")
    embed.add_argument("--num-workers", type=int, default=0, help="local engine: DataLoader worker processes reading tiles")
    embed.add_argument("--actors", type=int, default=None, help="ray engine: backbone actors (default one per GPU, else half the CPUs)")
    embed.add_argument("--seed", type=int, default=0, help="seed of a random initialisation (when no weights are given or cached)")
    embed.add_argument(
        "--outlines",
        action="store_true",
        help="also write each slide's tissue outline, the mask its tiles were chosen on, to OUT/<extractor>/outlines/<slide_id>.geojson "
        "(drag it onto the slide in QuPath)",
    )
    embed.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _interrupt_once(signum: int, frame: object) -> None:
    """SIGINT handler: raise KeyboardInterrupt, and ignore every later SIGINT of this process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _generate(args: argparse.Namespace) -> int:
    import signal
    import time

    # SIGINT (Ctrl-C, and how the runner stops a write-ahead writer) must raise KeyboardInterrupt,
    # which deletes the half-written cohort, even in a process started with SIGINT ignored: a
    # shell's background job starts so, and its children inherit it (CI run as `... &` did).
    # Only the first one: a second (Ctrl-C twice, or the runner's stop just after a first) would
    # break off that deletion halfway and leave the partial folder behind
    signal.signal(signal.SIGINT, _interrupt_once)

    from .virtual import COHORTS, virtual_cohort_files

    unknown = sorted(set(args.cohorts) - set(COHORTS))
    if unknown:
        print(f"mmsurv generate: unknown cohort(s) {unknown}; choose from {list(COHORTS)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    for name in args.cohorts or COHORTS:
        cohort_started = time.perf_counter()
        dataset = virtual_cohort_files(name, seed=args.seed, size=args.size, data_dir=args.data_dir, progress=not args.no_progress)
        print(
            f"{name:10s} {dataset.info['n_patients']:5d} patients {dataset.info['n_files']:6d} files "
            f"{time.perf_counter() - cohort_started:7.1f} s  {dataset.root}",
            flush=True,
        )
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .fetch import FetchError, fetch_manifest, load_manifest, resolve_manifest

    manifest = args.manifest
    if not manifest.is_file() and (PROJECT_ROOT / "data_manifests" / f"{manifest}.toml").is_file():
        manifest = PROJECT_ROOT / "data_manifests" / f"{manifest}.toml"
    overrides = {k: v for k, v in (("gdc", args.gdc_api), ("tcia", args.tcia_api)) if v}
    try:
        if args.list:
            for remote in resolve_manifest(load_manifest(manifest), api_overrides=overrides, only=args.only):
                print(f"{remote.size or '?':>12} {remote.md5 or '-':32s} {remote.path}")
            return 0
        summary = fetch_manifest(manifest, args.dest, api_overrides=overrides, only=args.only, retries=args.retries)
    except (FetchError, ValueError, FileNotFoundError) as error:
        print(f"mmsurv fetch: {error}", file=sys.stderr)
        return 1
    print(f"fetched {summary['fetched']}, already present {summary['skipped']}; lock file in {args.dest}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    import warnings

    from .io.errors import DataFormatError, DataWarning
    from .pathology.cohort_embedding import embed_cohort
    from .pathology.extractors import ExtractorSpec

    spec = ExtractorSpec(backbone=args.backbone, weights=str(args.weights) if args.weights else None, seed=args.seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # the failed slides are listed below, once
            summary = embed_cohort(
                args.cohort,
                args.out,
                extractor=spec,
                mpp=args.mpp,
                tile_px=args.tile_px,
                min_tissue=args.min_tissue,
                batch_size=args.batch_size,
                device=args.device,
                engine=args.engine,
                num_workers=args.num_workers,
                actors=args.actors,
                progress=not args.no_progress,
                outlines=args.outlines,
            )
    except (DataFormatError, ValueError, ImportError) as error:
        print(f"mmsurv embed: {error}", file=sys.stderr)
        return 2
    for slide_id, problem in summary.failed.items():
        print(f"failed: {slide_id}: {problem}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmsurv`` command; returns the process exit status."""
    args = _build_parser().parse_args(argv)
    if args.command == "run":
        from .runner import parse_parameter, run_notebooks

        try:
            parameters = dict(parse_parameter(p) for p in args.parameter)
            runs = run_notebooks(
                args.notebooks,
                smoke=args.smoke,
                parameters=parameters,
                results_root=args.results,
                cell_timeout=args.cell_timeout,
                progress_bar=not args.no_progress,
                write_ahead=args.write_ahead,
            )
        except ValueError as err:
            print(f"mmsurv run: {err}", file=sys.stderr)
            return 2
        print((Path(args.results) / "summary.md").read_text(), end="")  # the table run_notebooks wrote
        print(f"\nresults written to {Path(args.results).resolve()}")
        return 0 if all(run.status == "ok" for run in runs) else 1
    if args.command == "generate":
        return _generate(args)
    if args.command == "fetch":
        return _fetch(args)
    if args.command == "embed":
        return _embed(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
