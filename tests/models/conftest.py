"""A temporary BentoML model store for in-process model tests (set before bentoml is imported)."""

import atexit
import os
import shutil
import tempfile

_HOME = tempfile.mkdtemp(prefix="dw-models-bentoml-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ.setdefault("BENTOML_HOME", _HOME)
