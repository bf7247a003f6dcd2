"""Configuration: every option as ini key and flag, the precedence of the sources, and
schema-set definitions. No server is needed here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_project, output_of

from pytest_schemasync.config import OPTIONS, Option, Settings, build_settings
from pytest_schemasync.errors import ConfigError
from pytest_schemasync.plugin import _build_settings

SETS_TOML = """
[tool.schemasync.sets.alpha]
files = ["a.sql"]

[tool.schemasync.sets.beta]
files = ["b.sql"]
"""

# Two valid values per option: A and B differ from each other, and A from the default.
_STR_VALUES = {"default_set": ("alpha", "beta"), "clone_strategy": ("wal_log", "file_copy")}


def _values(option: Option) -> tuple[Any, Any]:
    if option.kind == "bool":
        return True, False
    if option.kind == "int":
        return 11, 22
    if option.kind == "path":
        return "rel/dir", "/abs/other"
    return _STR_VALUES.get(option.name, ("alpha-value", "beta-value"))


def _expected(option: Option, value: Any, root: Path) -> Any:
    if option.kind == "path":
        path = Path(value)
        return path if path.is_absolute() else root / path
    return value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settings(tmp_path: Path, option: Option, layers: dict[str, Any]) -> Settings:
    toml = "[tool.schemasync]\n"
    if "toml" in layers:
        toml += f"{option.toml_key} = {_toml(layers['toml'])}\n"
    (tmp_path / "pyproject.toml").write_text(toml + SETS_TOML)
    cli = {o.name: None for o in OPTIONS}
    if "flag" in layers:
        cli[option.name] = layers["flag"] if option.kind == "bool" else _as_text(layers["flag"])
    environ = {option.env: _as_text(layers["env"])} if "env" in layers else {}

    def ini(name: str) -> Any:
        if name == option.ini and "ini" in layers:
            # pytest gives a bool for bool ini keys, a string otherwise.
            value = layers["ini"]
            return value if option.kind == "bool" else _as_text(value)
        return None

    return build_settings(tmp_path, cli=cli, ini=ini, environ=environ)


def _layers(option: Option) -> list[str]:
    return ["flag", *(["env"] if option.env else []), "ini", "toml"]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_precedence_flag_env_ini_toml_default(tmp_path: Path, option: Option) -> None:
    a, b = _values(option)
    layers = _layers(option)
    get = lambda s: getattr(s, option.name)  # noqa: E731

    assert get(_settings(tmp_path, option, {})) == (
        _expected(option, option.default, tmp_path) if option.default is not None
        else ("alpha" if option.name == "default_set" else None))
    for index, layer in enumerate(layers):
        lower = layers[index + 1:]
        # This layer wins over every lower one ...
        chosen = {layer: a, **{low: b for low in lower}}
        assert get(_settings(tmp_path, option, chosen)) == _expected(option, a, tmp_path), chosen
        # ... also with the values swapped (a flag cannot say "false": it is store_true).
        if not (option.kind == "bool" and layer == "flag"):
            chosen = {layer: b, **{low: a for low in lower}}
            assert get(_settings(tmp_path, option, chosen)) == _expected(option, b, tmp_path), \
                chosen
        # ... and alone it beats the default.
        assert get(_settings(tmp_path, option, {layer: a})) == _expected(option, a, tmp_path)


def test_every_option_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    out = output_of(result)
    missing = []
    for option in OPTIONS:
        for text in (option.flag, *option.aliases, option.ini):
            if text not in out:
                missing.append(text)
    assert missing == []
    assert "schemasync_config" in out
    assert "schema-faithful PostgreSQL databases" in out


def _option_value(option: Option) -> Any:
    a, _ = _values(option)
    return a


def test_every_option_as_flag(pytester: pytest.Pytester) -> None:
    make_project(pytester, pyproject="[tool.pytest.ini_options]\n" + SETS_TOML)
    args = []
    for option in OPTIONS:
        value = _option_value(option)
        args.append(option.flag if option.kind == "bool" else f"{option.flag}={value}")
    settings = _build_settings(pytester.parseconfig(*args))
    for option in OPTIONS:
        expected = _expected(option, _option_value(option), pytester.path)
        assert getattr(settings, option.name) == expected, option.name


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.aliases], ids=lambda o: o.name)
def test_aliases(pytester: pytest.Pytester, option: Option) -> None:
    make_project(pytester, pyproject="[tool.pytest.ini_options]\n" + SETS_TOML)
    for alias in option.aliases:
        settings = _build_settings(pytester.parseconfig(alias))
        assert getattr(settings, option.name) is True


def test_every_option_as_ini_key(pytester: pytest.Pytester) -> None:
    lines = ["[tool.pytest.ini_options]"]
    for option in OPTIONS:
        lines.append(f'{option.ini} = "{_as_text(_option_value(option))}"')
    make_project(pytester, pyproject="\n".join(lines) + "\n" + SETS_TOML)
    settings = _build_settings(pytester.parseconfig())
    for option in OPTIONS:
        expected = _expected(option, _option_value(option), pytester.path)
        assert getattr(settings, option.name) == expected, option.name


def test_every_option_in_tool_schemasync(pytester: pytest.Pytester) -> None:
    lines = ["[tool.pytest.ini_options]", "[tool.schemasync]"]
    for option in OPTIONS:
        lines.append(f"{option.toml_key} = {_toml(_option_value(option))}")
    make_project(pytester, pyproject="\n".join(lines) + "\n" + SETS_TOML)
    settings = _build_settings(pytester.parseconfig())
    for option in OPTIONS:
        expected = _expected(option, _option_value(option), pytester.path)
        assert getattr(settings, option.name) == expected, option.name


def test_precedence_through_pytest(pytester: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, pyproject=(
        "[tool.pytest.ini_options]\n"
        'schemasync_server_user = "from-ini"\n'
        'schemasync_connect_timeout = "7"\n'
        "[tool.schemasync]\n"
        'server-user = "from-toml"\n'
        "connect-timeout = 9\n"
        'backup-dir = "toml-backups"\n'
        "rebuild = true\n" + SETS_TOML))
    settings = _build_settings(pytester.parseconfig())
    assert settings.server_user == "from-ini"
    assert settings.connect_timeout == 7
    assert settings.backup_dir == pytester.path / "toml-backups"
    assert settings.rebuild is True  # an unset bool ini key does not hide [tool.schemasync]
    monkeypatch.setenv("SCHEMASYNC_SERVER_USER", "from-env")
    monkeypatch.setenv("SCHEMASYNC_CONNECT_TIMEOUT", "8")
    monkeypatch.setenv("SCHEMASYNC_REBUILD", "false")
    settings = _build_settings(pytester.parseconfig())
    assert (settings.server_user, settings.connect_timeout, settings.rebuild) == \
        ("from-env", 8, False)
    settings = _build_settings(pytester.parseconfig(
        "--schemasync-server-user=from-flag", "--schemasync-connect-timeout=6",
        "--schemasync-rebuild", "-o", "schemasync_backup_dir=ini-backups"))
    assert (settings.server_user, settings.connect_timeout, settings.rebuild) == \
        ("from-flag", 6, True)
    assert settings.backup_dir == pytester.path / "ini-backups"


def test_schemasync_config_ini_points_at_another_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "schemasync.toml").write_text(
        '[tool.schemasync]\ndefault-set = "beta"\n' + SETS_TOML)
    make_project(pytester, pyproject=(
        '[tool.pytest.ini_options]\nschemasync_config = "conf/schemasync.toml"\n'))
    settings = _build_settings(pytester.parseconfig())
    assert sorted(settings.sets) == ["alpha", "beta"]
    assert settings.default_set == "beta"
    assert settings.sets["alpha"].files == ((pytester.path / "a.sql").resolve(),)


# --- schema sets -----------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_zero_config_is_one_empty_default_set(tmp_path: Path) -> None:
    settings = build_settings(_write(tmp_path, ""), environ={})
    assert list(settings.sets) == ["default"]
    assert settings.default_set == "default"
    assert settings.sets["default"].files == ()


def test_default_set_is_default_or_the_first(tmp_path: Path) -> None:
    settings = build_settings(_write(tmp_path, SETS_TOML), environ={})
    assert settings.default_set == "alpha"
    text = SETS_TOML + '\n[tool.schemasync.sets.default]\nfiles = ["d.sql"]\n'
    assert build_settings(_write(tmp_path, text), environ={}).default_set == "default"


def test_set_paths_are_resolved_with_their_config_lines(tmp_path: Path) -> None:
    text = (
        "[tool.schemasync.sets.app]\n"       # 1
        "files = [\n"                        # 2
        '    "db/one.sql",\n'                # 3
        '    "db/two.sql",\n'                # 4
        "]\n"                                # 5
        'migrations = "db/migrations"\n'     # 6
        'functions-file = "db/fn.sql"\n'     # 7
        'exclude-schemas = ["tmp_*"]\n'      # 8
        'production-url-env = "APP_URL"\n'   # 9
    )
    settings = build_settings(_write(tmp_path, text), environ={})
    app = settings.sets["app"]
    root = tmp_path.resolve()
    assert app.files == (root / "db/one.sql", root / "db/two.sql")
    assert app.migrations == root / "db/migrations"
    assert app.functions_file == root / "db/fn.sql"
    assert app.exclude_schemas == ("tmp_*",)
    assert app.production_url_env == "APP_URL"
    assert app.origin(root / "db/one.sql") == "pyproject.toml:3"
    assert app.origin(root / "db/two.sql") == "pyproject.toml:4"
    assert app.origin(root / "db/migrations") == "pyproject.toml:6"


def test_config_line_of_a_path_that_is_a_suffix_of_another(tmp_path: Path) -> None:
    text = (
        "[tool.schemasync.sets.app]\n"
        "files = [\n"
        '    "sql/schema.sql",\n'  # 3
        '    "schema.sql",\n'      # 4
        "]\n"
    )
    app = build_settings(_write(tmp_path, text), environ={}).sets["app"]
    assert app.origin(tmp_path.resolve() / "schema.sql") == "pyproject.toml:4"


def test_global_exclude_schemas_are_added_to_each_set(tmp_path: Path) -> None:
    text = ('[tool.schemasync]\nexclude-schemas = ["audit"]\n'
            '[tool.schemasync.sets.a]\nfiles = []\nexclude-schemas = ["tmp_*"]\n')
    settings = build_settings(_write(tmp_path, text), environ={})
    assert settings.sets["a"].exclude_schemas == ("audit", "tmp_*")


@pytest.mark.parametrize(("text", "message"), [
    ('[tool.schemasync]\ndefault-set = "nope"\n' + SETS_TOML,
     "The default schema set 'nope' is not configured (sets: alpha, beta)"),
    ('[tool.schemasync.sets.a]\nfiles = []\n[tool.schemasync.sets.a]\nfiles = []\n',
     "not valid TOML"),
    ('[tool.schemasync.sets.1abc]\nfiles = []\n',
     "pyproject.toml:1: schema set name '1abc' must start with a letter"),
    ('[tool.schemasync.sets."has space"]\nfiles = []\n',
     "schema set name 'has space' must start with a letter"),
    (f'[tool.schemasync.sets.{"x" * 41}]\nfiles = []\n', "at most 40 characters"),
    ('[tool.schemasync.sets.a]\nfiles = "one.sql"\n',
     "'files' of set 'a' must be a list of paths"),
    ('[tool.schemasync.sets.a]\nfile = ["one.sql"]\n', "unknown key(s) ['file'] in set 'a'"),
    ('[tool.schemasync]\nsets = 3\n', "must be a table of named sets"),
    ('[tool.schemasync]\nclone-strategy = "fast"\n',
     "clone_strategy must be auto, file_copy or wal_log, not 'fast'"),
    ('[tool.schemasync]\nrebuild = "maybe"\n', "rebuild must be true or false, not 'maybe'"),
    ('[tool.schemasync]\nconnect-timeout = "soon"\n',
     "connect_timeout must be a whole number, not 'soon'"),
    ("[tool]\nschemasync = 3\n", "[tool.schemasync] must be a table"),
], ids=["unknown-default-set", "duplicate-set", "name-starts-with-digit", "name-with-space",
        "name-too-long", "files-not-a-list", "unknown-key", "sets-not-a-table",
        "bad-clone-strategy", "bad-bool", "bad-int", "tool-schemasync-not-a-table"])
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(_write(tmp_path, text), environ={})
    assert message in str(excinfo.value)


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SCHEMASYNC_CONNECT_TIMEOUT: connect_timeout must"):
        build_settings(_write(tmp_path, ""), environ={"SCHEMASYNC_CONNECT_TIMEOUT": "x"})


def test_unknown_set_name_lists_the_known_ones(tmp_path: Path) -> None:
    settings = build_settings(_write(tmp_path, SETS_TOML), environ={})
    with pytest.raises(ConfigError, match=r"Unknown schema set 'gamma' \(configured sets: "
                                          r"alpha, beta\)"):
        settings.schema_set("gamma")
    assert settings.schema_set(None).name == "alpha"


@pytest.mark.parametrize(("pyproject", "args", "message"), [
    ("[tool.pytest.ini_options]\n[tool.schemasync]\ndefault-set = \"nope\"\n" + SETS_TOML, (),
     "The default schema set 'nope' is not configured (sets: alpha, beta)"),
    ("[tool.pytest.ini_options]\n" + SETS_TOML, ("--schemasync-default-set=gamma",),
     "The default schema set 'gamma' is not configured"),
    ("[tool.pytest.ini_options]\n[tool.schemasync.sets.9lives]\nfiles = []\n", (),
     "schema set name '9lives' must start with a letter"),
    # pytest reads pyproject.toml first and reports the duplicate table itself.
    ("[tool.pytest.ini_options]\n[tool.schemasync.sets.a]\n[tool.schemasync.sets.a]\n", (),
     "Cannot declare ('tool', 'schemasync', 'sets', 'a') twice"),
], ids=["default-set", "default-set-flag", "bad-name", "duplicate"])
def test_config_errors_are_usage_errors(pytester: pytest.Pytester, pyproject: str,
                                        args: tuple[str, ...], message: str) -> None:
    make_project(pytester, pyproject=pyproject)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    out = output_of(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert message in out
    assert "Traceback" not in out


def test_a_flag_value_given_as_a_separate_word_that_moved_the_rootdir_warns(
        pytester: pytest.Pytester, cache_dir: Path) -> None:
    """pytest picks its rootdir before plugin options are known, so in
    ``--schemasync-cache-dir DIR`` it takes DIR for a test path; we say so and how to avoid it."""
    make_project(pytester, sets={"main": {"files": []}})
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    cache_dir.mkdir(parents=True)
    moved = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--schemasync-cache-dir",
                                          str(cache_dir))
    out = output_of(moved)
    assert f"rootdir: {cache_dir}" in out
    assert "--schemasync-cache-dir=VALUE" in out and "SchemaSyncWarning" in out

    kept = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                         f"--schemasync-cache-dir={cache_dir}")
    kept.assert_outcomes(passed=1)
    assert "SchemaSyncWarning" not in output_of(kept)
