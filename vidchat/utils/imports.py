"""Load a user's own modules before a run reads its registries: `imports:` and `--import`.

A head (`register_head`), a video or audio tokenizer and its trainer
(`register_video_tokenizer`, `register_tokenizer_trainer`), a data source (`register_source`)
and a metric (`register_metric`) each register themselves when their module is imported. A
module named here is imported before the config is read, so a run takes the user's classes by
their kind without any edit under `vidchat/`:

    python train.py imports=[my_lab.heads] model.layout.video_head=my_head
    python train.py 'imports=[/path/to/my_source.py]' data.kind=my_source
    python -m vidchat.eval 'imports=[my_lab.metrics]' 'metrics=[my_metric]'
    python infer.py --import my_lab.heads --input clip.mp4

Each entry is a dotted module name, found on `sys.path` with the working folder first (as
`python -m` finds it), or the path of a `.py` file, imported under its file name's stem.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from vidchat.errors import ConfigError


def _from_file(path: Path, what: str) -> ModuleType:
    if not path.is_file():
        raise ConfigError(f"{what}: {path} is not a file")
    name = path.stem
    if name in sys.modules:
        if getattr(sys.modules[name], "__file__", None) == str(path):
            return sys.modules[name]
        raise ConfigError(
            f"{what}: {path} would be imported as {name!r}, which names another module "
            "already imported; rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{what}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def missing_itself(name: str, exc: ModuleNotFoundError) -> bool:
    """Whether importing `name` failed because `name` (or a package above it) does not exist,
    rather than because the module failed to import something of its own."""
    return bool(exc.name) and (name + ".").startswith(f"{exc.name}.")


def _by_name(name: str, what: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if missing_itself(name, exc):
            raise ConfigError(
                f"{what}: no module {name!r} (give a dotted name on the Python path, "
                "or a path to a .py file)"
            ) from exc
        raise


def import_user_modules(specs: Iterable[str] | None, what: str = "imports") -> list[ModuleType]:
    """Import every module `specs` names, in order; a name that finds no module is one
    `ConfigError` line. Errors raised by the module's own code propagate unchanged, so the
    user sees their own traceback."""
    if isinstance(specs, str):
        raise ConfigError(f"{what} must be a list of modules, e.g. {what}=[{specs}]")
    modules = []
    for spec in specs or []:
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError(
                f"{what}: each entry must be a module name or a .py path, got {spec!r}"
            )
        spec = spec.strip()
        if spec.endswith(".py") or os.sep in spec:
            modules.append(_from_file(Path(spec).expanduser().resolve(), what))
        else:
            modules.append(_by_name(spec, what))
    return modules
