"""Foreground-aware visual similarity of two rendered images."""

from __future__ import annotations

import numpy as np
import pytest

from reward_server.image_similarity import (
    dominant_border_colour,
    foreground_mask,
    soft_iou,
    visual_similarity,
)

SIZE = 336
WHITE = (255, 255, 255)
RED = (255, 0, 0)


def canvas(colour: tuple[int, int, int] = WHITE, size: int = SIZE) -> np.ndarray:
    return np.full((size, size, 3), colour, dtype=np.uint8)


def disc(
    image: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]
) -> np.ndarray:
    out = image.copy()
    yy, xx = np.mgrid[: out.shape[0], : out.shape[1]]
    out[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = colour
    return out


def square(
    image: np.ndarray, x: int, y: int, side: int, colour: tuple[int, int, int]
) -> np.ndarray:
    out = image.copy()
    out[y : y + side, x : x + side] = colour
    return out


REFERENCE = disc(canvas(), 168, 168, 60, RED)


def test_identical_is_exactly_one() -> None:
    assert visual_similarity(REFERENCE, REFERENCE.copy()) == {
        "ssim": 1.0,
        "ssim_fg": 1.0,
        "fg_iou": 1.0,
        "visual": 1.0,
    }


def test_blank_scores_zero_although_plain_ssim_is_high() -> None:
    # The recipe's defect: a white picture has high SSIM against a small drawing on white.
    small = disc(canvas(), 168, 168, 30, RED)
    result = visual_similarity(small, canvas())
    assert result["ssim"] > 0.7
    assert result["fg_iou"] == 0.0
    assert result["visual"] == 0.0


def test_ordering_identical_shift_colour_different_blank() -> None:
    shifted = visual_similarity(REFERENCE, disc(canvas(), 174, 168, 60, RED))["visual"]
    recoloured = visual_similarity(REFERENCE, disc(canvas(), 168, 168, 60, (200, 0, 0)))["visual"]
    different = visual_similarity(REFERENCE, square(canvas(), 10, 10, 80, (0, 128, 0)))["visual"]
    blank = visual_similarity(REFERENCE, canvas())["visual"]
    assert 1.0 > shifted > different >= blank == 0.0
    assert 1.0 > recoloured > different
    assert shifted > 0.4 and recoloured > 0.4  # near misses keep most of the credit
    assert different < 0.05


def test_wrong_colour_keeps_the_shape_but_loses_ssim() -> None:
    result = visual_similarity(REFERENCE, disc(canvas(), 168, 168, 60, (0, 0, 255)))
    assert result["fg_iou"] == pytest.approx(1.0)
    assert result["ssim_fg"] < 0.5


def test_background_comes_from_the_reference() -> None:
    # A drawing with its own background rectangle: a blank white render covers the canvas
    # with "foreground" of the wrong colour, and a render with the background but without
    # the circle has no foreground at all. Both must score low.
    blue_ref = disc(canvas((30, 60, 200)), 168, 168, 60, RED)
    assert visual_similarity(blue_ref, canvas())["visual"] < 0.2
    assert visual_similarity(blue_ref, canvas((30, 60, 200)))["visual"] == 0.0
    assert visual_similarity(blue_ref, blue_ref.copy())["visual"] == 1.0


def test_both_without_foreground_are_the_same_picture() -> None:
    noisy = canvas()
    noisy[0, 0] = (250, 250, 250)  # below the foreground threshold
    assert visual_similarity(canvas(), noisy)["visual"] == 1.0


def test_plain_reference_counts_the_plain_share_of_the_candidate() -> None:
    red = canvas(RED)
    stray = red.copy()
    stray[:, 0] = WHITE  # one column of edge pixels
    assert visual_similarity(red, stray)["visual"] > 0.9
    assert visual_similarity(red, canvas())["visual"] == 0.0  # white where all is red
    assert visual_similarity(red, disc(red, 168, 168, 100, WHITE))["visual"] < 0.7


def test_sizes_are_matched_and_large_images_reduced() -> None:
    small = disc(canvas(size=168), 84, 84, 30, RED)
    assert visual_similarity(REFERENCE, small)["visual"] > 0.8  # same drawing, half size
    big = disc(canvas(size=1000), 500, 500, 180, RED)
    assert visual_similarity(big, big[:, ::-1].copy())["visual"] > 0.9  # mirror of a centred disc


def test_helpers() -> None:
    assert tuple(dominant_border_colour(REFERENCE)) == WHITE
    mask = foreground_mask(REFERENCE, np.array(WHITE))
    assert mask[168, 168] and not mask[0, 0]
    empty = np.zeros((10, 10), bool)
    assert soft_iou(empty, empty, 1.0) == 1.0
    assert soft_iou(mask, empty[:1, :1].repeat(SIZE, 0).repeat(SIZE, 1), 1.0) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10, 3), dtype=np.float32),  # not uint8
        np.zeros((10, 10, 5), dtype=np.uint8),  # not RGB
    ],
)
def test_rejects_what_is_not_an_rgb_image(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        visual_similarity(bad, bad)
