"""Root pytest configuration: modules with import-time side effects are not collected for doctests."""

# service/bento.py is a process entry point: importing it builds settings from the
# environment, points BentoML at the data dir and loads the service.
collect_ignore = ["service/bento.py"]
