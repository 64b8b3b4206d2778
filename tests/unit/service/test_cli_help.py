"""Every command's --help renders: argparse formats help strings with %, so a bare "95%" crashed
`review-router --help` (issue: the CLI's help was unreachable)."""

from __future__ import annotations

import argparse

import pytest

from service.cli.main import parser


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return out


def test_the_top_level_help_and_every_commands_help_render() -> None:
    top = parser()
    assert "review-router" in top.format_help()
    commands = _subparsers(top)
    assert {"serve", "worker", "replay", "stats", "bench"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert text.startswith("usage:"), name


def test_help_exits_cleanly_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "95% interval" in capsys.readouterr().out
