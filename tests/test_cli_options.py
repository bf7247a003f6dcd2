"""The ``schemasync`` command takes its global options before or after the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_schemasync.cli import _PYTEST_ONLY, build_parser
from pytest_schemasync.config import OPTIONS

GLOBAL = [o for o in OPTIONS if o.name not in _PYTEST_ONLY and o.name != "dry_run"]
COMMANDS = ["check", "status", "diff", "migrate", "refresh", "rollback", "backups", "dump", "clean"]
REQUIRED = {"diff": ["dev", "prod"]}  # a command's required positional arguments


def test_the_command_list_is_complete() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_global_option_after_every_command(command: str) -> None:
    parser = build_parser()
    for option in GLOBAL:
        given = option.flag if option.kind == "bool" else f"{option.flag}=v"
        argv = [command, *REQUIRED.get(command, []), given]
        args = parser.parse_args(argv)
        assert getattr(args, option.name) == (True if option.kind == "bool" else "v"), argv
    args = parser.parse_args([command, *REQUIRED.get(command, []), "--project", "/some/project"])
    assert args.project == Path("/some/project")


def test_before_after_and_both() -> None:
    parser = build_parser()
    flag = "--schemasync-pg-bindir"
    assert parser.parse_args([f"{flag}=/before", "check"]).pg_bindir == "/before"
    assert parser.parse_args(["check", f"{flag}=/after"]).pg_bindir == "/after"
    assert parser.parse_args([f"{flag}=/before", "check", f"{flag}=/after"]).pg_bindir == "/after"
    assert parser.parse_args(["check"]).pg_bindir is None


def test_option_after_the_command_takes_effect(tmp_path: Path) -> None:
    """As users type it: the option is read, not refused as an unrecognized argument."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemasync.sets.main]\nfiles = ["schema.sql"]\nproduction-url-env = "PROD"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_schemasync.cli", "check",
         "--schemasync-pg-bindir", str(tmp_path / "no-such-bin"),
         f"--schemasync-cache-dir={tmp_path / 'cache'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PROD": "postgresql://u@127.0.0.1:1/x"})
    out = proc.stdout + proc.stderr
    assert "unrecognized arguments" not in out
    assert proc.returncode == 4, out
    assert f"The pinned PostgreSQL bin directory {tmp_path / 'no-such-bin'} lacks" in out
