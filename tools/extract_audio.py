#!/usr/bin/env python3
"""Extract each video's audio track as a 16 kHz mono 16-bit wav, with PyAV (no ffmpeg binary).

Example:
  python tools/extract_audio.py --videos-root data/mmit/videos256 --out-root data/mmit/audio \\
      --list data/mmit/train-mini.csv --workers 8
Outputs are OUT_ROOT/<relative video path>.wav (e.g. a/b.mp4 -> a/b.mp4.wav); existing ones are
skipped (re-run to resume). Videos without an audio stream are listed in --no-audio-list
(default OUT_ROOT/no_audio.txt), not treated as failures; unreadable videos are listed in
--failed-list (default OUT_ROOT/failed.txt). Both leave the exit status 0.
"""
import argparse
import os
import sys

from m3a.prep.media_files import add_media_arguments, failed_list_path, media_paths_or_none, run_media_jobs
from m3a.prep.transcode import NO_AUDIO, extract_job
from m3a.utils.file_io import atomic_write_text


def wav_path(out_root: str, video: str) -> str:
    """Where the wav of a video (relative path) goes."""
    return os.path.join(out_root, video + ".wav")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_media_arguments(parser, "folder of the videos", "folder for the wav files")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output sample rate (default 16000)")
    parser.add_argument("--no-audio-list", default=None,
                        help="videos without audio (default OUT_ROOT/no_audio.txt)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Extract every audio track and print a summary."""
    args = parse_args(argv)
    paths = media_paths_or_none(args)
    if paths is None:
        return 2
    jobs = [(os.path.join(args.videos_root, p), wav_path(args.out_root, p), args.sample_rate) for p in paths]
    failed_list = failed_list_path(args)
    run = run_media_jobs(extract_job, jobs, paths, args.workers, "extracting", failed_list)
    no_audio = run.paths.get(NO_AUDIO, [])
    no_audio_list = args.no_audio_list or os.path.join(args.out_root, "no_audio.txt")
    atomic_write_text(no_audio_list, "".join(p + "\n" for p in no_audio))
    print(run.report(failed_list))
    print(f"{len(no_audio)} videos without audio, listed in {no_audio_list}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
