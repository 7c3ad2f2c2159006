"""wasi-testsuite runtime adapter for Weir.

Loaded as a module by wasi-testsuite's `run-tests -r conformance/weir.py`.
The command to run defaults to this checkout's Node (node_modules/.bin/node)
and built CLI (dist/cli/main.js); override with WEIR="node /path/to/main.js".
"""

import os
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_REPO = Path(__file__).resolve().parent.parent
_DEFAULT = [str(_REPO / "node_modules" / ".bin" / "node"), str(_REPO / "dist" / "cli" / "main.js")]
WEIR = shlex.split(os.environ["WEIR"]) if os.environ.get("WEIR") else _DEFAULT


def get_name() -> str:
    return "weir"


def get_version() -> str:
    result = subprocess.run(WEIR + ["--version"], encoding="UTF-8", capture_output=True, check=True)
    return result.stdout.strip().split(" ")[-1]


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command", "wasi:http/service"]


def get_timeout_seconds() -> float:
    # Node start-up plus compiling a component; generous for a loaded 2-core machine.
    return 30.0


def _remove_stale_cleanup_symlinks(root: str) -> None:
    # The runner deletes the `*.cleanup` files and directories a test leaves
    # in its root, but skips symlinks (so as not to follow them). Several
    # filesystem tests create `parent.cleanup -> ..` when the runtime allows
    # it, and a leftover one makes later tests (read-directory) see an entry
    # they did not create. Remove such leftovers before each run.
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if name.endswith(".cleanup") and os.path.islink(p):
                os.unlink(p)


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    if root:
        _remove_stale_cleanup_symlinks(root)
    if wasi_world == "wasi:http/service":
        argv = WEIR + ["serve", "--addr=127.0.0.1:0"]
    else:
        argv = WEIR + ["run"]
    if "sockets" in proposals:
        # As wasmtime's adapter: a test that lists sockets gets every address.
        # Tests without a JSON spec (sockets-*-properties) get no grant: creating
        # sockets and setting options is allowed by default.
        argv += ["-S", "inherit-network"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    if "http" in proposals:
        # Outbound HTTP is denied by default: grant exactly the servers the
        # runner started for this test (passed to the guest as HTTP_SERVER_<NAME>).
        for k, v in env.items():
            if k.startswith("HTTP_SERVER_"):
                argv += ["--allow-outbound", v]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv += ["--", test_path]
    argv += args
    return argv
