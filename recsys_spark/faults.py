"""Fail points: named places where a test can kill the process as `kill -9` would.

`failpoint("publish.after_recommendations")` does nothing unless the environment
variable RECSYS_FAILPOINT names that point; then the process sends itself SIGKILL (no
cleanup, no finally blocks, no atexit), which is how the fault tests prove that a crash
at the worst moment leaves every published table readable at a good version.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "RECSYS_FAILPOINT"


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL when RECSYS_FAILPOINT equals `name`."""
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)
