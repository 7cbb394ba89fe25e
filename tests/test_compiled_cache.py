"""The compiled engine's disk cache: one directory per source digest, and the caches of other sources removed once
they have gone unused for a week."""

from __future__ import annotations

import os

import numba

from creditsim import model
from creditsim.model import STALE_CACHE_SECONDS, mark_used, prune_caches


def _cache(path, age, now):
    (path / "model_0").mkdir(parents=True)
    (path / "model_0" / "f.nbi").write_bytes(b"x")
    for p in (path / "model_0", path):
        os.utime(p, (now - age, now - age))


def test_the_engine_caches_under_a_digest_of_the_source():
    name = os.path.basename(numba.config.CACHE_DIR)
    assert model._CACHE_NAME.fullmatch(name) and numba.config.CACHE_DIR == model._cache_directory()


def test_only_other_sources_caches_unused_for_a_week_are_removed(tmp_path):
    now = 1_800_000_000.0
    current, stale, recent = (tmp_path / f"creditsim-{c * 16}" for c in "abc")
    _cache(current, 10 * STALE_CACHE_SECONDS, now)        # the current source's: kept however old
    _cache(stale, STALE_CACHE_SECONDS + 60.0, now)
    _cache(recent, STALE_CACHE_SECONDS - 60.0, now)
    other = tmp_path / "creditsim-notadigest"
    _cache(other, 10 * STALE_CACHE_SECONDS, now)          # not a name the engine writes: left alone
    (tmp_path / "creditsim-dddddddddddddddd").write_text("a file, not a cache directory")
    removed = prune_caches(str(current), now=now)
    assert removed == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, recent.name, other.name, "creditsim-dddddddddddddddd"])
    assert prune_caches(str(tmp_path / "missing" / "creditsim-0000000000000000"), now=now) == []  # no directory: nothing to do


def test_an_import_marks_its_cache_used(tmp_path):
    """Loading compiled code writes nothing, so an import touches its cache directory: an old cache that is still
    imported is not pruned."""
    old = tmp_path / f"creditsim-{'e' * 16}"
    _cache(old, 10 * STALE_CACHE_SECONDS, 1_800_000_000.0)
    mark_used(str(old))
    assert prune_caches(str(tmp_path / f"creditsim-{'f' * 16}")) == []
    mark_used(str(tmp_path / "missing"))  # no directory: nothing happens
