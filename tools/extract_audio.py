#!/usr/bin/env python3
"""Extract each video's audio track as a 16 kHz mono 16-bit wav, with PyAV (no ffmpeg binary).

Example:
  python tools/extract_audio.py --videos-root data/mmit/videos256 --out-root data/mmit/audio \\
      --list data/mmit/train-mini.csv --workers 8
Outputs are OUT_ROOT/<relative video path>.wav (e.g. a/b.mp4 -> a/b.mp4.wav); existing ones are
skipped (re-run to resume). Videos without an audio stream are listed in --no-audio-list
(default OUT_ROOT/no_audio.txt), not treated as failures; unreadable videos are listed in
OUT_ROOT/failed.txt. Both leave the exit status 0.
"""
import argparse
import os
import sys


from m3a.datasets.video_list import ListFormatError
from m3a.prep.media_files import list_media, run_media_jobs
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
    parser.add_argument("--videos-root", required=True, help="folder of the videos")
    parser.add_argument("--out-root", required=True, help="folder for the wav files")
    parser.add_argument("--list", default=None, help="only the videos of this list 'path,label...'")
    parser.add_argument("--separator", default=",", help="list separator between path and labels")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output sample rate (default 16000)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--no-audio-list", default=None,
                        help="videos without audio (default OUT_ROOT/no_audio.txt)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Extract every audio track and print a summary."""
    args = parse_args(argv)
    try:
        paths = list_media(args.videos_root, args.list, args.separator)
    except (ListFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    jobs = [(os.path.join(args.videos_root, p), wav_path(args.out_root, p), args.sample_rate) for p in paths]
    failed_list = os.path.join(args.out_root, "failed.txt")
    run = run_media_jobs(extract_job, jobs, paths, args.workers, "extracting", failed_list)
    no_audio = run.paths.get(NO_AUDIO, [])
    no_audio_list = args.no_audio_list or os.path.join(args.out_root, "no_audio.txt")
    atomic_write_text(no_audio_list, "".join(p + "\n" for p in no_audio))
    print(run.summary())
    print(f"{len(no_audio)} videos without audio, listed in {no_audio_list}")
    if run.failures:
        print(f"{len(run.failures)} unreadable videos, listed in {failed_list}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
