"""gunicorn settings shared by `./dev up` and the Docker image (gunicorn reads ./gunicorn.conf.py itself)."""
accesslog = "-"
# The path, never the query string: a resident search puts names there, and logs carry no personal data.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(M)sms'


def post_worker_init(worker):
    # After the app is loaded in the worker: what it holds for life leaves the cyclic GC's reach (server/runtime.py).
    from server.runtime import tune_gc

    tune_gc()
