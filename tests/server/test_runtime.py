"""A gunicorn worker tunes the cyclic GC once its app is loaded (server/runtime.py): checked through the hook
gunicorn.conf.py gives gunicorn, so that dropping the hook or the tuning fails here."""
import gc
import runpy
from pathlib import Path

from server.runtime import GC_THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]


def test_worker_init_freezes_the_loaded_app_and_raises_the_young_threshold():
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    before = gc.get_threshold()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        conf["post_worker_init"](None)
        assert gc.get_freeze_count() > 0  # what was alive (this test process's modules) is frozen
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_objects_made_after_the_freeze_are_still_collected():
    before = gc.get_threshold()
    try:
        from server.runtime import tune_gc

        tune_gc()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        import weakref

        ref = weakref.ref(a)
        del a, b
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
