"""Offline stand-in for the get-pip bootstrap script that `ansible-test --venv` downloads.

ansible-test runs it as ``python get_pip.py [pip options] PACKAGES`` inside a fresh virtual
environment. This machine reaches only the package index, so instead of the real script we
bootstrap pip with ``ensurepip`` and then install the requested packages with that pip.
scripts/setup.sh copies this file into ansible-test's cache.
"""

import subprocess
import sys

DROP = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if a not in DROP]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
