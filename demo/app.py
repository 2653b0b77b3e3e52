"""Run the loop-svdd demo: ``python demo/app.py MODEL [--host H] [--port P]`` (same as ``loop-svdd demo``).

The implementation lives in ``loop_svdd.demo`` so it is importable once the package is installed.
"""

from __future__ import annotations

import sys

from loop_svdd.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
