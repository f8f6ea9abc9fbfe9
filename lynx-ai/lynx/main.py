"""`python -m lynx.main`: starts `lynx serve` (the Rust binary), as the runbook's development set-up does.

Looks for the binary on PATH, then in the repository's target/release; otherwise builds and runs it
with cargo. Arguments after `python -m lynx.main` are passed on (default: `serve`).
"""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    args = sys.argv[1:] or ["serve"]
    binary = shutil.which("lynx") or str(REPO / "target" / "release" / "lynx")
    if os.access(binary, os.X_OK):
        os.execv(binary, [binary, *args])
    cargo = shutil.which("cargo")
    if cargo is None:
        sys.exit("lynx: neither the lynx binary nor cargo was found; see README.md")
    os.chdir(REPO)
    os.execv(cargo, [cargo, "run", "--release", "--bin", "lynx", "--", *args])


if __name__ == "__main__":
    main()
