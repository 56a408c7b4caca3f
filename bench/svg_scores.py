"""Our `svg-code` score next to the recipe's formula on the ordering set of the tests.

    python bench/svg_scores.py

The recipe's reward (RECIPE.md): 0.5 x SSIM of the 336 x 336 renders on white + 0.25 x
token Jaccard + 0.25 x tag Jaccard. It is recomputed here from our renders (plain SSIM at
full resolution) so that both columns see the same pixels.
"""

from __future__ import annotations

from reward_server.code_overlap import tag_jaccard, token_jaccard
from reward_server.types import ItemContext
from reward_server.verifiers import svg_code
from tests.reward_server.verifiers.test_svg_code import ORDERING

CASES = ("identical", "shifted", "recoloured", "different drawing", "blank", "truncated")


def recipe_score(candidate: str, reference: str) -> float:
    from skimage.metrics import structural_similarity

    try:
        pixels = svg_code.render_svg(candidate)
    except svg_code.RenderError:
        ssim = 0.0
    else:
        gold = svg_code.render_svg(reference)
        ssim = structural_similarity(gold, pixels, channel_axis=2, data_range=255)
    overlap = token_jaccard(candidate, reference) + tag_jaccard(candidate, reference)
    return 0.5 * ssim + 0.25 * overlap


def main() -> None:
    options, context = svg_code.Options(), ItemContext()
    print("| reference | candidate | recipe | ours | visual | token J | tag J |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (reference, *variants) in ORDERING.items():
        for case, candidate in zip(CASES, [reference, *variants], strict=True):
            extracted = svg_code.extract(f"<answer>{candidate}</answer>", options, context)
            assert extracted is not None
            verdict = svg_code.compare(extracted, reference, options, context)
            parts = verdict.components
            print(
                f"| {name} | {case} | {recipe_score(extracted, reference):.2f} "
                f"| {verdict.score:.2f} | {parts.get('visual', 0.0):.2f} "
                f"| {parts.get('token_jaccard', 0.0):.2f} | {parts.get('tag_jaccard', 0.0):.2f} |"
            )


if __name__ == "__main__":
    main()
