"""Command-line entry: serve the simulator in the foreground until interrupted.

Every SimulatorConfig field has an option (`--spike-limit 25`, `--no-compact-commitments`);
without options the simulator behaves like production and prints what that means.
"""

from __future__ import annotations

import argparse
import contextlib
import types
import typing
from collections.abc import Sequence
from dataclasses import MISSING, fields
from typing import Any

import uvicorn

from procore_sim.application import create_app
from procore_sim.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LENIENT_HOURLY_LIMIT,
    LENIENT_SPIKE_LIMIT,
    SimulatorConfig,
)

DEFAULT_PORT = 8765
# Fields with an option of their own in run()'s signature, or none at all.
BASIC_FIELDS = ("companies", "projects", "records", "seed", "client_id", "client_secret")
NO_OPTION = ("extra_clients", "today")


def _option_type(name: str) -> tuple[Any, bool]:
    """(the value type, whether it may be None) of a config field."""
    hint = typing.get_type_hints(SimulatorConfig)[name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per SimulatorConfig field beyond the basic ones (booleans: --x/--no-x)."""
    group = parser.add_argument_group("behaviour (defaults are production's)")
    group.add_argument(
        "--lenient",
        action="store_true",
        help=f"raise the rate limits to {LENIENT_HOURLY_LIMIT}/h and {LENIENT_SPIKE_LIMIT} "
        "per window (other production behaviours stay on)",
    )
    for spec in fields(SimulatorConfig):
        if spec.name in BASIC_FIELDS or spec.name in NO_OPTION:
            continue
        flag = "--" + spec.name.replace("_", "-")
        kind, optional = _option_type(spec.name)
        default = None if spec.default is MISSING else spec.default
        if kind is bool:
            group.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default {'on' if default else 'off'}",
            )
        else:
            shown = "off" if optional and default is None else default
            group.add_argument(flag, type=kind, default=None, help=f"default {shown}")


def config_from_options(args: argparse.Namespace, **basics: Any) -> SimulatorConfig:
    """The SimulatorConfig named by parsed options (unset ones keep their defaults)."""
    values: dict[str, Any] = {k: v for k, v in basics.items() if v is not None}
    chosen = {
        spec.name: getattr(args, spec.name)
        for spec in fields(SimulatorConfig)
        if spec.name not in BASIC_FIELDS
        and spec.name not in NO_OPTION
        and getattr(args, spec.name, None) is not None
    }
    values.update(chosen)
    if getattr(args, "lenient", False):
        return SimulatorConfig.lenient(**values)
    return SimulatorConfig(**values)


def config_to_options(config: SimulatorConfig) -> list[str]:
    """Command-line options reproducing a config (for a simulator in a child process)."""
    out: list[str] = []
    for spec in fields(SimulatorConfig):
        if spec.name in NO_OPTION:
            continue
        value = getattr(config, spec.name)
        if value == spec.default:
            continue
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            out += [flag, str(value)]
    return out


def _options_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector simulator", add_help=False)
    add_config_options(parser)
    return parser


def run(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    companies: int = 2,
    projects: int = 3,
    records: int = 50,
    seed: int = 1,
    client_id: str | None = None,
    client_secret: str | None = None,
    options: Sequence[str] = (),
) -> None:
    """Prints the URL, client credentials and behaviour, then serves until interrupted.

    `options` are the behaviour options (`--spike-limit 100`, `--no-compact-commitments`).
    """
    args = _options_parser().parse_args(list(options))
    config = config_from_options(
        args,
        companies=companies,
        projects=projects,
        records=records,
        seed=seed,
        client_id=client_id or DEFAULT_CLIENT_ID,
        client_secret=client_secret or DEFAULT_CLIENT_SECRET,
    )
    serve(config, host, port)


def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Prints the banner and serves a config until interrupted."""
    url = f"http://{host}:{port}"
    print(f"Procore simulator on {url} (API and login base URL)", flush=True)
    print(f"  client_id:     {config.client_id}", flush=True)
    print(f"  client_secret: {config.client_secret}", flush=True)
    print(
        f"  {config.companies} companies x {config.projects} projects, {config.records} records "
        f"per stream, seed {config.seed}; control API under {url}/_sim/",
        flush=True,
    )
    for line in config.behaviours():
        print(f"  {line}", flush=True)
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `python -m procore_sim`."""
    parser = argparse.ArgumentParser(
        prog="python -m procore_sim", description="Run the Procore API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--companies", type=int, default=2)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    add_config_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parses arguments and runs the simulator."""
    args = build_parser().parse_args(argv)
    config = config_from_options(
        args,
        companies=args.companies,
        projects=args.projects,
        records=args.records,
        seed=args.seed,
        client_id=args.client_id or DEFAULT_CLIENT_ID,
        client_secret=args.client_secret or DEFAULT_CLIENT_SECRET,
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve(config, args.host, args.port)
