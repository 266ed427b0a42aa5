"""SynFER, the built-in synthetic FER benchmark (implementation in :mod:`poi_hf.data.synfer`).

    >>> from poi_hf.data.synthetic import load_synfer
    >>> ds = load_synfer(num_train=2000, noise_rate=0.2)  # DatasetDict: train / validation / test

Preview from the command line::

    python -m poi_hf.data.synthetic --preview synfer.png
"""

from __future__ import annotations

import argparse

from .synfer import *  # noqa: F401,F403  (the public API lives in the subpackage)
from .synfer import DEFAULT_DIFFICULTY, SynFERConfig, __all__, build_synfer, contact_sheet  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a labelled contact sheet of SynFER samples.")
    parser.add_argument("--preview", required=True, help="output image path, e.g. synfer.png")
    parser.add_argument("--num", type=int, default=24, help="samples to show")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--scale", type=int, default=3, help="upscaling of each image")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--num-classes", type=int, default=7)
    parser.add_argument("--difficulty", type=float, default=DEFAULT_DIFFICULTY)
    parser.add_argument("--label-mode", default="subjective")
    parser.add_argument("--noise-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-per-identity", type=int, default=1, help="1 shows the most identities")
    args = parser.parse_args(argv)
    config = SynFERConfig(
        num_train=args.num,
        num_validation=0,
        num_test=0,
        image_size=args.image_size,
        num_classes=args.num_classes,
        difficulty=args.difficulty,
        label_mode=args.label_mode,
        noise_rate=args.noise_rate,
        seed=args.seed,
        samples_per_identity=args.samples_per_identity,
    )
    contact_sheet(build_synfer(config)["train"], args.num, args.columns, args.scale).save(args.preview)
    print(f"wrote {args.preview}")


if __name__ == "__main__":
    main()
