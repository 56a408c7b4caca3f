"""How alike two rendered pictures look, with blank renders worth nothing.

`visual_similarity(reference, candidate)` compares two RGB images (uint8, H x W x 3; the
candidate is resized to the reference's size when they differ) and returns named
components in [0, 1]:

- `ssim`: plain SSIM over the whole image (Wang et al. 2004, scikit-image's
  `structural_similarity`, 7x7 windows, per colour channel, clipped at 0). This is the
  recipe's image term. On mostly white pictures it is close to 1 for ANY mostly white
  candidate, which is how an empty `<svg>` earns 0.77 against a small red circle there.
- `ssim_fg`: the mean of the same SSIM map over the foreground region only: pixels that
  differ from the background in EITHER image, grown by the SSIM window's half-width so
  that edges count. The background is the most common colour on the reference's border
  (white for the usual render on white; a drawing's own background rectangle otherwise).
- `fg_iou`: a soft intersection-over-union of the two foreground masks, each blurred with
  a Gaussian (sigma `SHIFT_TOLERANCE_PX`) so that a shift of a pixel or two, or
  anti-aliasing, costs little while a drawing in the wrong place or of the wrong size
  scores low: sum(min(a, b)) / sum(max(a, b)).
- `visual = ssim_fg * fg_iou`: the combined value. A blank candidate where the reference
  has foreground has `fg_iou = 0`, hence `visual = 0`; a right shape in the wrong colour
  keeps its IoU but loses SSIM; a different drawing loses both.

Two images with no foreground at all (both plain background) are the same picture:
every component is 1. A plain reference (one colour, no foreground) against a candidate
with some: the whole image is the region (`ssim_fg = ssim`) and `fg_iou` is the share of
the candidate left plain, so stray edge pixels cost little and a wrong-coloured canvas
scores 0. Identical images score exactly 1 without computing anything.
"""

from __future__ import annotations

import numpy as np

# A pixel is foreground when one of its channels differs from the background by more than
# this (of 255): above JPEG/anti-aliasing noise, below any colour a person would notice.
FOREGROUND_THRESHOLD = 24
# Blur of the foreground masks before their IoU: a few pixels of shift are forgiven.
SHIFT_TOLERANCE_PX = 1.0
# Comparison resolution: the recipe's 336 x 336 renders are compared at 168 x 168.
COMPARE_MAX_SIDE = 168
# scikit-image's default SSIM window is 7x7: the region grows by its half-width.
_SSIM_WINDOW = 7


def visual_similarity(
    reference: np.ndarray, candidate: np.ndarray, *, max_side: int = COMPARE_MAX_SIDE
) -> dict[str, float]:
    """Components `ssim`, `ssim_fg`, `fg_iou` and their combination `visual`, each in [0, 1].

    Images whose longer side exceeds `max_side` are box-averaged down by an integer factor
    first (speed, and tolerance to sub-pixel differences in anti-aliasing).
    """
    reference = _as_rgb(reference)
    candidate = _as_rgb(candidate)
    if candidate.shape != reference.shape:
        candidate = _resize(candidate, reference.shape[1], reference.shape[0])
    if np.array_equal(reference, candidate):
        return {"ssim": 1.0, "ssim_fg": 1.0, "fg_iou": 1.0, "visual": 1.0}
    factor = -(-max(reference.shape[:2]) // max_side)
    if factor > 1:
        reference, candidate = _reduce(reference, factor), _reduce(candidate, factor)

    ssim_map = _ssim_map(reference, candidate)
    background = dominant_border_colour(reference)
    ref_fg = foreground_mask(reference, background)
    cand_fg = foreground_mask(candidate, background)
    region = _grow(ref_fg | cand_fg, _SSIM_WINDOW // 2)

    ssim = float(np.clip(ssim_map.mean(), 0.0, 1.0))
    if not region.any():
        # Neither image has foreground: they differ only by sub-threshold noise.
        return {"ssim": ssim, "ssim_fg": 1.0, "fg_iou": 1.0, "visual": 1.0}
    if not ref_fg.any():
        # A plain reference (one colour): every candidate pixel off that colour is wrong.
        plain_share = 1.0 - float(cand_fg.mean())
        return {"ssim": ssim, "ssim_fg": ssim, "fg_iou": plain_share, "visual": ssim * plain_share}
    ssim_fg = float(np.clip(ssim_map[region].mean(), 0.0, 1.0))
    fg_iou = soft_iou(ref_fg, cand_fg, SHIFT_TOLERANCE_PX)
    return {"ssim": ssim, "ssim_fg": ssim_fg, "fg_iou": fg_iou, "visual": ssim_fg * fg_iou}


def dominant_border_colour(image: np.ndarray) -> np.ndarray:
    """The most common RGB colour among the image's outermost pixels."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    colours, counts = np.unique(border.reshape(-1, 3), axis=0, return_counts=True)
    return colours[int(np.argmax(counts))]


def foreground_mask(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels whose colour differs from `background` by more than the threshold."""
    difference = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    return difference > FOREGROUND_THRESHOLD


def soft_iou(a: np.ndarray, b: np.ndarray, sigma: float) -> float:
    """IoU of two boolean masks after a Gaussian blur; 0 when only one has pixels."""
    from scipy.ndimage import gaussian_filter

    if not a.any() or not b.any():
        return 1.0 if not a.any() and not b.any() else 0.0
    soft_a = gaussian_filter(a.astype(np.float32), sigma)
    soft_b = gaussian_filter(b.astype(np.float32), sigma)
    return float(np.minimum(soft_a, soft_b).sum() / np.maximum(soft_a, soft_b).sum())


def _ssim_map(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The per-pixel SSIM, averaged over the colour channels."""
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(reference, candidate, channel_axis=2, data_range=255, full=True)
    return np.asarray(full, dtype=np.float64).mean(axis=2)


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=radius)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    return image[:, :, :3]


def _reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-average `factor` x `factor` blocks (PIL's `reduce`, fast on uint8)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).reduce(factor))


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
