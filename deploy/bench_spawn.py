"""Spawn-time benchmark: start N students' servers one after another through the hub API.

    deploy/.venv/bin/python deploy/bench_spawn.py [--root /srv/tinytorch] [--url https://127.0.0.1:443]
                                                  [--spawns 20] [--out results/deploy/spawn.json]

Each spawn is a new user (``bench01``, ...), timed from the API request until the
hub reports the server ready (home made with its quota, container created, Jupyter
answering); each server runs one cell importing tinytorch, then is stopped. Writes
the times, their median and 95th percentile, and the student image's size. The
bench users and their homes are removed at the end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubclient import HubClient  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def remove_home(home: Path) -> None:
    """A home with a quota is a btrfs subvolume (root: inode 256); without one, a folder."""
    if home.is_dir() and home.stat().st_ino == 256:
        subprocess.run(["btrfs", "subvolume", "delete", str(home)], capture_output=True, check=True)
    elif home.exists():
        shutil.rmtree(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/srv/tinytorch", help="tinytorch_root of the deploy")
    parser.add_argument("--url", default="https://127.0.0.1:443")
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument("--out", default="results/deploy/spawn.json")
    args = parser.parse_args()

    token = Path(args.root, "secrets", "api_token").read_text().strip()
    hub = HubClient(args.url, token, ca=str(Path(args.root, "tls", "hub.crt")))
    spawner = yaml.safe_load(Path(args.root, "config", "course.yml").read_text())["spawner"]
    image = spawner["image"]
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image],
                              capture_output=True, text=True, check=True).stdout)
    times, users = [], [f"bench{i:02d}" for i in range(1, args.spawns + 1)]
    try:
        for user in users:
            hub.create_user(user)
            seconds = hub.start_server(user)
            assert "tinytorch" in hub.run_code(user, "import tinytorch; print(tinytorch.__name__)")
            hub.stop_server(user)
            times.append(round(seconds, 2))
            print(f"{user}: ready in {seconds:.2f} s", flush=True)
    finally:
        for user in users:
            try:
                hub.stop_server(user)
                hub.api("DELETE", f"/users/{user}", ok=(204, 404))
            except Exception as error:  # keep cleaning up the others
                print(f"cleanup of {user}: {error}", file=sys.stderr)
            remove_home(Path(spawner["homes"]["host_path"], user))
    result = {
        "spawns": len(times), "seconds": times,
        "median_s": round(statistics.median(times), 2), "p95_s": round(percentile(times, 0.95), 2),
        "student_image": image, "student_image_bytes": size,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"median {result['median_s']} s, p95 {result['p95_s']} s over {len(times)} spawns; "
          f"student image {size / 1e6:.0f} MB; written to {out}")


if __name__ == "__main__":
    main()
