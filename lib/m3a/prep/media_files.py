"""Which media files a tool works on: the paths of a list, or every video under a folder."""
import os
from typing import List, Optional

from m3a.datasets.video_list import read_video_list

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")


def list_media(videos_root: str, list_path: Optional[str] = None, separator: str = ",") -> List[str]:
    """Relative paths: the unique paths of ``list_path``, else all video files under the root."""
    if not os.path.isdir(videos_root):
        raise FileNotFoundError(f"videos root not found: {videos_root}")
    if list_path:
        entries = read_video_list(list_path, separator=separator, multi_label=True)
        return list(dict.fromkeys(e.path for e in entries))
    found = []
    for folder, dirs, files in os.walk(videos_root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith(".tmp-"):
                found.append(os.path.relpath(os.path.join(folder, name), videos_root))
    return found
