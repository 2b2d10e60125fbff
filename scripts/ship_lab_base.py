"""Ship the lab base model of a lab sweep (default: the quickstart) inside the package, under its
content key, so a fresh clone's quickstart copies it instead of building it (five minutes of two
cores). Run it again whenever `tests/train/test_lab_base.py` says the shipped base is stale (the
lab, the tiny model or its pretraining changed, and with them the key).

    .venv/bin/python scripts/ship_lab_base.py                        # build, then ship
    .venv/bin/python scripts/ship_lab_base.py --cache runs/cache     # ship one already built
    .venv/bin/python scripts/ship_lab_base.py --check                # rebuild, compare to shipped

The build is deterministic for its seed and thread count (`--threads`, default torch's); the
shipped base is one such build, recorded with its step count, loss and time in lab_base.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_file", nargs="?", type=Path, default=ROOT / "sweeps" / "quickstart.yaml")
    ap.add_argument("--cache", type=Path, help="a sweep cache that already holds the base")
    ap.add_argument("--check", action="store_true", help="rebuild and compare with the shipped")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    from sftmix_ray.config import load_sweep
    from sftmix_ray.data.prepare import prepare
    from sftmix_ray.train.lab_base import INFO_FILE, SHIPPED, build_lab_base, lab_base_key

    sweep, _ = load_sweep(args.sweep_file)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "cache"
        prepared = prepare(sweep, cache)
        key = lab_base_key(sweep.model, prepared.tokenizer_dir)
        shipped = SHIPPED / f"lab-base-{key}"
        built = cache / f"lab-base-{key}"
        if args.check or not (built / INFO_FILE).is_file():
            built = Path(tmp) / "built"
            print(f"building lab base {key} (minutes)", flush=True)
            info = build_lab_base(sweep.model, prepared.tokenizer_dir, built,
                                  threads=args.threads)
            (built / INFO_FILE).write_text(json.dumps({"key": key, **info}, indent=1))
        if args.check:
            if not (shipped / INFO_FILE).is_file():
                sys.exit(f"no shipped base under key {key}: run this script without --check")
            a, b = (load_file(str(d / "model.safetensors")) for d in (built, shipped))
            diff = max(float((a[k] - b[k]).abs().max()) for k in a)
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            print(f"rebuilt vs shipped lab base {key}: "
                  f"{'identical' if same else 'DIFFERENT'} (max |diff| {diff:.3g})")
            sys.exit(0 if same else 1)
        for old in SHIPPED.glob("lab-base-*"):  # one shipped base: the current key's
            shutil.rmtree(old)
        SHIPPED.mkdir(exist_ok=True)
        shutil.copytree(built, shipped)
        print(f"shipped: {shipped.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
