"""Process-level settings of a server worker (gunicorn calls tune_gc from gunicorn.conf.py)."""
import gc

# A young-generation collection after 50,000 new container objects instead of CPython's 700: one pull page
# or push batch makes tens of thousands (rows, dicts, tuples), which at 700 meant dozens of collections per
# request, each promoting survivors toward the full collections that walk the whole heap.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Once the app is loaded in a worker: its modules, models, compiled statements and caches live as long as
    the process, so they are frozen out of the cyclic collector's reach (gc.freeze, as the Python docs advise
    for servers), and young collections are made rarer. Garbage is still collected: reference counting frees
    almost everything at once, and cycles are found by the collector as before, only less often.

    Measured (bench/sync_pull.py, SQLite, docs/benchmarks.md): a whole-site pull went from ~80-90k to
    ~140-160k records/s over HTTP; in process, full collections of 90-110 ms had hit one page in ten."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
