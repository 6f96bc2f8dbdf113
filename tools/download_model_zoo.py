#!/usr/bin/env python3
"""Download published checkpoints (configs/model_zoo.yaml) or any URL, resumable and verified.

Examples:
  python tools/download_model_zoo.py --list
  python tools/download_model_zoo.py mmit-v1-t-vat --dir checkpoints
  python tools/download_model_zoo.py action-net-jester-r50-8f --dir checkpoints
  python tools/download_model_zoo.py --all --dir checkpoints
  python tools/download_model_zoo.py --url URL --sha256 HEX --out FILE

Interrupted downloads resume from FILE.part, but only when FILE.part.json shows that the bytes
belong to the same remote file (same URL, size and ETag/Last-Modified); otherwise the file is
fetched from the start. Each file must arrive within --deadline seconds, an attempt receiving
fewer than --stall-bytes in --stall-seconds is abandoned (and retried), and no file may exceed
--max-size (or the manifest's exact size). A file failing its SHA-256 is moved to FILE.corrupt.
Entries without a published SHA-256 are trusted on first download: the hash is recorded in
FILE.sha256 and later runs verify against it. Manifest filenames must stay inside --dir.
Google Drive and Dropbox share links are turned into direct downloads. An entry with a 'member'
(a Dropbox folder link, answered with a ZIP archive) gets that one file extracted; its hash is
the extracted file's. After each entry with a config, the file is loaded (torch.load with
weights_only=True) into the model of that config; missing/unexpected keys and shape differences
are listed and the entry fails (--no-load-check skips this). A model whose data files (an M3A
head's lexicons) are missing is not checked; one whose data files are malformed fails the entry.
"""
import argparse
import logging
import os
import sys


from m3a.utils.download import (
    DEADLINE_S, MAX_SIZE, STALL_BYTES, STALL_SECONDS, DownloadError, Downloader, parse_size,
)
from m3a.utils.errors import InputError
from m3a.utils.model_zoo import (
    DEFAULT_MANIFEST, ManifestError, ZooEntry, config_path, download_entry, fetch_member, fetch_verified, load_manifest,
)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="model-zoo entries to download (see --list)")
    p.add_argument("--all", action="store_true", help="download every entry of the manifest")
    p.add_argument("--list", action="store_true", help="list the manifest's entries and exit")
    p.add_argument("--dir", default="checkpoints", help="folder for model-zoo files (default: checkpoints)")
    p.add_argument("--manifest", default=os.path.normpath(DEFAULT_MANIFEST), help="model-zoo manifest (YAML)")
    p.add_argument("--url", help="direct mode: URL to download (needs --out)")
    p.add_argument("--sha256", default="", help="direct mode: expected SHA-256 (empty: record it on first download)")
    p.add_argument("--out", help="direct mode: output file")
    p.add_argument("--member", action="append",
                   help="direct mode: the URL answers with a ZIP archive (e.g. a Dropbox folder link); extract "
                        "the one file whose name matches this glob pattern (repeatable) to --out")
    p.add_argument("--no-load-check", action="store_true",
                   help="do not load downloaded entries into the model of their config")
    p.add_argument("--retries", type=int, default=5, help="retries after the first attempt (default 5)")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry wait in seconds, doubled each retry")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (a silent server)")
    p.add_argument("--deadline", type=float, default=DEADLINE_S,
                   help=f"seconds one file may take in all, retries included; 0: none (default {DEADLINE_S:g})")
    p.add_argument("--stall-bytes", type=_size, default=STALL_BYTES,
                   help=f"an attempt receiving fewer bytes than this in --stall-seconds has stalled and is "
                        f"retried (default {STALL_BYTES // 1024}K)")
    p.add_argument("--stall-seconds", type=float, default=STALL_SECONDS,
                   help=f"window of the stall check in seconds; 0: no stall check (default {STALL_SECONDS:g})")
    p.add_argument("--max-size", type=_size, default=MAX_SIZE,
                   help=f"largest file accepted, e.g. 500M or 8G, also when the server sends no length; 0: no limit "
                        f"(default {MAX_SIZE >> 30}G; a manifest entry's 'size' is used instead where given)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    direct = args.url is not None or args.out is not None or args.member is not None
    if direct and not (args.url and args.out):
        p.error("direct mode needs both --url and --out")
    if direct and (args.names or args.all):
        p.error("give either model names/--all or --url/--out, not both")
    if not direct and not args.list and not args.all and not args.names:
        p.error("name a model-zoo entry, or use --all, --list or --url/--out")
    return args


def _report(result, name: str, first_trust: bool) -> None:
    state = "downloaded" if result.downloaded else "already present"
    if result.verified:
        check = "SHA-256 verified"
    elif first_trust:
        check = f"SHA-256 {result.sha256} (no published hash: recorded in {result.path}.sha256, trust on first download)"
    else:
        check = f"SHA-256 {result.sha256}"
    print(f"{name}: {state} {result.path}; {check}")


def load_check(entry: ZooEntry, path: str) -> bool:
    """Load ``path`` into the model of the entry's config; print how it fits. False: it does not."""
    from m3a.config import ConfigError, load_config  # torch and the models are imported only when a check runs
    from m3a.models import build_model
    from m3a.utils.checkpoint import CheckpointError
    from m3a.utils.checkpoint_fit import check_fit
    from m3a.utils.lexicon import LexiconNotFoundError

    try:
        cfg = load_config(config_path(entry), ["LOG_MODEL_INFO", "False", "NUM_GPUS", "0"])
    except ConfigError as err:
        print(f"error: {entry.name}: config {entry.config}: {err}", file=sys.stderr)
        return False
    try:
        model = build_model(cfg)
    except (LexiconNotFoundError, FileNotFoundError) as err:  # e.g. an M3A head's lexicons: no data folder yet
        print(f"{entry.name}: load check skipped: the model of {entry.config} cannot be built without its data ({err})")
        return True
    except InputError as err:  # a data file that is there but malformed
        print(f"error: {entry.name}: the model of {entry.config} cannot be built: {err}", file=sys.stderr)
        return False
    try:
        report = check_fit(path, model)
    except CheckpointError as err:  # torch's reasons run over several lines: the first names the problem
        print(f"error: {entry.name}: {str(err).splitlines()[0]}", file=sys.stderr)
        return False
    if report.fits:
        print(f"{entry.name}: loads into {entry.config} ({report.tensors} tensors, {report.layout} layout)")
        return True
    print(f"error: {entry.name}: {path} does not fit {entry.config}:", file=sys.stderr)
    for line in report.problems():
        print(f"  {line}", file=sys.stderr)
    return False


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    downloader = Downloader(retries=args.retries, backoff=args.backoff, timeout=args.timeout,
                            progress=not args.no_progress, deadline=args.deadline, stall_bytes=args.stall_bytes,
                            stall_seconds=args.stall_seconds, max_size=args.max_size)
    try:
        if args.url:
            sha = args.sha256.strip().lower()
            if args.member:
                result = fetch_member(args.url, args.out, args.member, sha, downloader)
            else:
                result = fetch_verified(args.url, args.out, sha, downloader)
            _report(result, os.path.basename(args.out), first_trust=not args.sha256)
            return 0
        manifest = load_manifest(args.manifest)
        if args.list:
            for name, entry in manifest.items():
                pub = entry.published or {}
                scores = "  ".join(f"{k} {pub.get(k)}" for k in ("top1", "top5", "map") if pub.get(k) is not None)
                print(f"{name:30s} {entry.title:34s} {scores or 'no published numbers'}  config {entry.config}")
            return 0
        names = list(manifest) if args.all else args.names
        unknown = [n for n in names if n not in manifest]
        if unknown:
            raise ManifestError(f"unknown model-zoo entry '{unknown[0]}' (known: {', '.join(manifest)})")
    except (DownloadError, ManifestError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    failed = 0
    for name in names:
        entry = manifest[name]
        try:
            result = download_entry(entry, args.dir, downloader)
            _report(result, name, first_trust=not entry.sha256)
            if entry.config and not args.no_load_check and not load_check(entry, result.path):
                failed += 1
        except (DownloadError, ManifestError) as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
