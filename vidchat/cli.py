"""Shared entry-point plumbing: Hydra composition, stage dispatch, one-line user errors."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from omegaconf import DictConfig

from vidchat.errors import ConfigError, VidchatError
from vidchat.utils.atomic import check_writable_folder
from vidchat.utils.imports import import_user_modules, missing_itself
from vidchat.utils.paths import CONFIG_DIR

log = logging.getLogger("vidchat")


def resolve_entry(entry: str) -> Callable[[DictConfig], Any]:
    """Turn `package.module:function` into the function it names."""
    module_name, _, attr = entry.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"stage.entry must look like 'package.module:function', got {entry!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not missing_itself(module_name, exc):
            raise  # the module exists but an import inside it failed: the user needs that trace
        raise ConfigError(f"stage.entry {entry!r}: module {module_name!r} not found") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"stage.entry {entry!r}: {module_name} has no {attr!r}") from exc


def run_stage(cfg: DictConfig) -> Any:
    """Run the stage that `cfg.stage.entry` names with the whole config."""
    if "stage" not in cfg or "entry" not in cfg.stage:
        raise ConfigError("config has no stage.entry; pick a stage, e.g. `stage=pretrain`")
    return resolve_entry(cfg.stage.entry)(cfg)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose bad command line is one `error:` line (exit 2), as every other bad input
    is, instead of a usage block before the error; `--help` still prints the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """`--import MODULE` (repeatable) into `args.imports`: the user's modules, imported with
    `vidchat.utils.imports.import_user_modules` before anything reads a registry."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="your module (dotted name or .py path) to import first, e.g. one that registers "
        "the head or tokenizer a checkpoint names (repeatable)",
    )


def exit_on_user_error(fn: Callable[[], Any]) -> Any:
    """Call `fn`; a `VidchatError` becomes one line on stderr and exit code 2; Ctrl-C or SIGTERM
    (see `stop_on_sigterm`) one line and exit code 130, after atomic writers removed their
    temp files."""
    try:
        return fn()
    except VidchatError as exc:
        if os.environ.get("VIDCHAT_FULL_ERROR"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was left behind", file=sys.stderr)
        sys.exit(130)


def stop_on_sigterm() -> None:
    """Handle SIGTERM (`kill`, a scheduler's stop) like Ctrl-C: a KeyboardInterrupt unwinds the
    run, so every atomic writer deletes its temp file on the way out."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def one_line(message: str) -> str:
    """Hydra's multi-line composition errors as one line (option lists comma-joined)."""
    parts: list[str] = []
    options: list[str] = []
    for raw in message.strip().splitlines():
        line = raw.strip()
        if line.startswith(
            ("Config search path", "full_key:", "object_type", "Set the environment")
        ):
            break
        if raw.startswith("\t"):
            options.append(line)
        elif line:
            parts.append(line.rstrip(":") + (": " if line.endswith(":") else ""))
    text = " ".join(p if p.endswith(": ") else p.rstrip(".") + "." for p in parts).replace(
        ":.", ":"
    )
    return f"{text.strip()} {', '.join(options)}" if options else text.rstrip(".")


def check_overrides(config_name: str, overrides: list[str]) -> None:
    """Compose once up front so that a bad override or group value fails with one clear line
    (Hydra's own report spans several). Hydra flags (`-m`, `--cfg`, ...) are left to Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(arg.startswith("-") for arg in overrides):
        return
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
            paths = (
                {k: cfg.paths[k] for k in ("checkpoint_dir", "output_dir")}
                if "paths" in cfg
                else {}
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(one_line(str(exc))) from exc
    # Hydra writes its run folder under output_dir before the run starts; a stage writes under
    # checkpoint_dir only after loading its data: both are tried here, creating nothing.
    for key, folder in paths.items():
        check_writable_folder(folder, f"paths.{key}", create=False)


def compose(config_name: str = "train", overrides: list[str] | None = None) -> DictConfig:
    """The packaged config `config_name` with `overrides`, as `python -m vidchat.train` would
    compose it (for scripts, notebooks and tests; no Hydra run directory)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides or []))


def run_with_imports(cfg: DictConfig, run: Callable[[DictConfig], Any]) -> Any:
    """Import the user's modules that `cfg.imports` names (their registrations: heads,
    tokenizers and trainers, data sources, metrics), then `run(cfg)`."""
    import_user_modules(cfg.get("imports"))
    return run(cfg)


def hydra_main(config_name: str, entry: Callable[[DictConfig], Any] | None = None) -> None:
    """Compose `configs/<config_name>.yaml` with the command-line overrides and run `entry`
    (default: the stage that `stage.entry` names)."""
    import hydra

    run = entry or run_stage
    stop_on_sigterm()
    exit_on_user_error(lambda: check_overrides(config_name, sys.argv[1:]))

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def _main(cfg: DictConfig) -> Any:
        return exit_on_user_error(lambda: run_with_imports(cfg, run))

    _main()
