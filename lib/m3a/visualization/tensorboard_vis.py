"""Write visualisations (PNG figures, Grad-CAM overlay frames) as TensorBoard image summaries."""
from typing import Dict, Optional

import matplotlib.image as mpimg
import numpy as np
from torch.utils.tensorboard import SummaryWriter


def png_to_array(path: str) -> np.ndarray:
    """Read a PNG as a float32 (H, W, 3) array in [0, 1]."""
    img = mpimg.imread(path)
    if img.dtype != np.float32:
        img = img.astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def write_images(
    log_dir: str,
    pngs: Optional[Dict[str, str]] = None,
    frames: Optional[Dict[str, np.ndarray]] = None,
    step: int = 0,
) -> None:
    """Add each ``tag -> PNG file`` as one image and each ``tag -> (T, H, W, 3) uint8`` as a batch of images."""
    writer = SummaryWriter(log_dir=log_dir)
    try:
        for tag, path in (pngs or {}).items():
            writer.add_image(tag, png_to_array(path), step, dataformats="HWC")
        for tag, clip in (frames or {}).items():
            writer.add_images(tag, np.asarray(clip, dtype=np.float32) / 255.0, step, dataformats="NHWC")
    finally:
        writer.close()
