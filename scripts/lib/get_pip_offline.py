"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test runs it as ``__main__`` inside a fresh virtual environment with pip's
options and the packages to install. Instead of downloading pip, we take the pip
bundled with Python (ensurepip, in a child process so its state does not leak), then
let that pip install what was asked.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
