"""gunicorn settings shared by `./dev up` and the Docker image (gunicorn reads ./gunicorn.conf.py itself)."""
accesslog = "-"
# The path, never the query string: a resident search puts names there, and logs carry no personal data.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(M)sms'
