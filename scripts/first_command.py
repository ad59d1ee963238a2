"""Run the README's first command as a newcomer does, and check what it gives.

The command is read from README.md (its first ```bash block), so the two cannot drift apart. It runs in a clean copy
of the tree (the files git tracks, and the untracked ones it does not ignore, as they are now), which builds a venv
of its own holding only the extras the command names. Checked: it exits 0, prints no traceback, the quickstart's
test macro-F1 is at least 0.95, and none of the optional libraries is installed in that venv (so none was needed).

    python3 scripts/first_command.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("peft", "gensim", "ray", "tensorboard")  # embedlab's optional libraries (pipeline/extras.py)
MIN_F1 = 0.95


def first_command(readme: Path) -> str:
    """The first ```bash block of the README, as written."""
    found = re.search(r"```bash\n(.*?)```", readme.read_text(encoding="utf-8"), re.DOTALL)
    if found is None:
        sys.exit(f"first-command: no ```bash block in {readme}")
    return found.group(1).strip()


def copy_tree(target: Path) -> None:
    """The files git tracks, and the untracked ones it does not ignore, as they are in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def shown(line: str) -> str:
    """What a terminal shows of a line that a progress bar rewrote with carriage returns: its last state."""
    states = [state for state in line.split("\r") if state.strip()]
    return states[-1] if states else ""


def installed_optional(venv: Path) -> list[str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    names = {package["name"].lower() for package in json.loads(listed.stdout or "[]")}
    return [name for name in OPTIONAL if name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it, instead of a temporary one")
    args = parser.parse_args()
    command = first_command(ROOT / "README.md")
    work = args.keep or Path(tempfile.mkdtemp(prefix="first-command-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        copy_tree(work)
        print(f"first-command: running in a clean copy ({work}):\n  {command}", flush=True)
        start = time.monotonic()
        done = subprocess.run(["bash", "-c", command], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seconds = time.monotonic() - start
        output = done.stdout.decode("utf-8", errors="replace")  # bytes: text mode would turn a bar's \r into \n
        # what a terminal would show at the end: a progress bar's last state, not each of its updates
        lines = [shown(line) for line in output.split("\n")]
        print("\n".join(lines))
        problems = []
        if done.returncode != 0:
            problems.append(f"exit code {done.returncode}")
        if "Traceback" in output:
            problems.append("a traceback was printed")
        folders = [line.removeprefix("run folder: ") for line in lines if line.startswith("run folder: ")]
        metrics = work / folders[-1] / "metrics.json" if folders else None
        f1 = json.loads(metrics.read_text())["test"]["f1_macro"] if metrics and metrics.is_file() else None
        if f1 is None or f1 < MIN_F1:
            problems.append(f"test f1_macro {f1} (at least {MIN_F1} expected)")
        extras = installed_optional(work / ".venv")
        if extras:
            problems.append(f"optional libraries installed by the first command: {', '.join(extras)}")
        if problems:
            print(f"first-command: FAILED after {seconds:.0f} s: {'; '.join(problems)}")
            return 1
        print(f"first-command: exit 0 in {seconds:.0f} s, test f1_macro {f1:.4f}, no optional library installed")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
