"""The bundled catalog snapshot stored with its template (pytest_schemasync.snapshots).

Real embedded server, example_project's two sets: the stored snapshot must equal a fresh read
of the template, and a tampered or stale file must be read again, never trusted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import scratch_cache_dir

from pytest_schemasync.catalog import Snapshot, normalize
from pytest_schemasync.check import bundled_snapshot
from pytest_schemasync.config import build_settings
from pytest_schemasync.scratch import Scratch
from pytest_schemasync.snapshots import SnapshotStore, _checksum, catalog_options

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Scratch]:
    with scratch_cache_dir() as cache:
        settings = build_settings(EXAMPLE, cli={"cache_dir": str(cache)}, environ={})
        with Scratch(settings) as session:
            session.prepare()  # builds both templates: each stores its snapshot
            yield session


def _store(scratch: Scratch) -> SnapshotStore:
    manager = scratch.manager
    assert manager.snapshot_dir is not None
    return SnapshotStore(manager.snapshot_dir, manager.server_admin)


def _same(a: Snapshot, b: Snapshot) -> None:
    assert a.server_version == b.server_version
    assert a.server_major == b.server_major
    assert a.schemas_excluded == b.schemas_excluded
    assert list(a.objects) == list(b.objects)  # same keys in the same (report) order
    assert a.objects == b.objects
    assert a.database == b.database  # the `database` kind's properties and settings
    assert a.server_settings == b.server_settings


@pytest.mark.parametrize("set_name", ["gameforge", "carthorse"])
def test_stored_snapshot_equals_a_fresh_read(scratch: Scratch, set_name: str) -> None:
    manager = scratch.manager
    schema_set = scratch.settings.schema_set(set_name)
    template = manager.template(set_name)
    options = catalog_options(schema_set)
    stored = _store(scratch).load(template.name, options)
    assert stored is not None, "the build did not store the snapshot"
    fresh = manager._read_template(template.name, options)
    assert len(fresh.objects) > 100
    _same(stored, fresh)
    _same(bundled_snapshot(manager, schema_set), fresh)


def _rewrite(path: Path, edit_payload: bool = False, edit_key: bool = False) -> None:
    head_line, payload = path.read_text(encoding="utf-8").split("\n", 1)
    head = json.loads(head_line)
    if edit_payload:  # a changed definition, checksum left as it was
        data = json.loads(payload)
        data["objects"][-1][2] += "\n-- tampered"
        payload = json.dumps(data)
    if edit_key:  # another template's file (its OID), internally consistent
        key = json.loads(head["key"])
        key["oid"] = str(int(key["oid"]) + 1)
        head["key"] = json.dumps(key, sort_keys=True)
        head["sha256"] = _checksum(head["key"], payload)
    path.write_text(json.dumps(head) + "\n" + payload, encoding="utf-8")


@pytest.mark.parametrize("how", ["payload", "key", "truncated", "missing"])
def test_tampered_or_stale_snapshot_is_read_again(scratch: Scratch, how: str) -> None:
    manager = scratch.manager
    schema_set = scratch.settings.schema_set("gameforge")
    template = manager.template("gameforge")
    options = catalog_options(schema_set)
    store = _store(scratch)
    path = store.path(template.name)
    fresh = manager._read_template(template.name, options)
    if how == "payload":
        _rewrite(path, edit_payload=True)
    elif how == "key":
        _rewrite(path, edit_key=True)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-200])
    else:
        path.unlink()
    assert store.load(template.name, options) is None
    _same(bundled_snapshot(manager, schema_set), fresh)
    reread = store.load(template.name, options)  # stored again, and trusted again
    assert reread is not None
    _same(reread, fresh)


def test_other_options_are_not_served_a_snapshot_taken_with_others(scratch: Scratch) -> None:
    manager = scratch.manager
    template = manager.template("carthorse")
    schema_set = scratch.settings.schema_set("carthorse")
    options = catalog_options(schema_set)
    other = type(options)(exclude_schemas=())
    store = _store(scratch)
    assert store.load(template.name, options) is not None
    assert store.load(template.name, other) is None


def _normalize_by_hand(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(stripped for line in lines if (stripped := line.rstrip()))


def test_normalize_fast_path_changes_nothing_it_should_not() -> None:
    """normalize() skips texts it would not change: it must agree with the full work on
    every text, including odd whitespace (tabs, NBSP, line separators, form feeds)."""
    rng = random.Random(14)
    alphabet = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u2028", "\x0c", "\x1c",
                "$$", ";"]
    texts = ["", "a", "\n", "a\n", "\na", "a \nb", "a\n\nb", "a\u00a0", "a\rb", "a\tb"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
              for _ in range(20000)]
    for text in texts:
        assert normalize(text) == _normalize_by_hand(text), repr(text)


def test_the_check_reads_the_stored_snapshot(scratch: Scratch) -> None:
    """A consistent file (key and checksum right) is what the check uses, without a clone:
    a definition changed in it, checksum recomputed, shows up in the bundled snapshot."""
    manager = scratch.manager
    schema_set = scratch.settings.schema_set("gameforge")
    template = manager.template("gameforge")
    store = _store(scratch)
    path = store.path(template.name)
    manager.template_snapshot(template.name, catalog_options(schema_set))  # stored, trusted
    head_line, payload = path.read_text(encoding="utf-8").split("\n", 1)
    head = json.loads(head_line)
    data = json.loads(payload)
    data["objects"][0][2] += "\n-- marker"
    payload = json.dumps(data)
    head["sha256"] = _checksum(head["key"], payload)
    path.write_text(json.dumps(head) + "\n" + payload, encoding="utf-8")
    clones_before = manager.server_admin.names("datname LIKE 'ssc\\_%'")
    bundled = bundled_snapshot(manager, schema_set)
    assert next(iter(bundled.objects.values())).definition.endswith("\n-- marker")
    assert manager.server_admin.names("datname LIKE 'ssc\\_%'") == clones_before
    path.unlink()  # the next read takes it from a clone again


def test_snapshots_of_dropped_templates_are_removed(scratch: Scratch) -> None:
    manager = scratch.manager
    schema_set = scratch.settings.schema_set("gameforge")
    template = manager.template("gameforge")
    store = _store(scratch)
    prefix = template.name[: template.name.rfind("_") + 1]
    gone = store.path(prefix + "0123456789")  # a template of this set no longer there
    gone.write_text("{}\n")
    options = catalog_options(schema_set)
    store.save(template.name, options, manager._read_template(template.name, options))
    assert not gone.exists()
    assert store.load(template.name, options) is not None
