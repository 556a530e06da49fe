"""Write app/training/data/digits.npz from scikit-learn's bundled copy of the 8x8 digits.

The playground's digits are the test set of the UCI "Optical Recognition of Handwritten Digits"
data (E. Alpaydin and C. Kaynak, 1998), the 1,797 images scikit-learn ships as
sklearn/datasets/data/digits.csv.gz. The server reads them from the .npz this writes, so it
needs NumPy only; scikit-learn is needed just to run this once (`pip install -e '.[bench]'`).

    python scripts/extract_digits.py [--out app/training/data/digits.npz]

It prints the file's SHA-256 and the arrays' digests: tests/test_digits_data.py holds them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.training.datasets import DIGITS_FILE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DIGITS_FILE)
    args = parser.parse_args()
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data, target = bunch.data, bunch.target
    # every value is a whole count of inked pixels in a 4x4 block (0-16) or a digit (0-9)
    assert data.shape == (1797, 64) and np.array_equal(data, np.round(data))
    assert data.min() == 0 and data.max() == 16 and set(np.unique(target)) == set(range(10))
    pixels, labels = data.astype(np.uint8), target.astype(np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, pixels=pixels, labels=labels)
    print(f"wrote {args.out} from scikit-learn {sklearn.__version__}")
    print(f"file sha256   {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    print(f"pixels sha256 {hashlib.sha256(pixels.tobytes()).hexdigest()}")
    print(f"labels sha256 {hashlib.sha256(labels.tobytes()).hexdigest()}")


if __name__ == "__main__":
    main()
