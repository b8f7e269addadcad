"""tinytorch.threads: one BLAS thread, and as many data-parallel workers as the container's CPU quota allows."""
import os
import subprocess
import sys
from pathlib import Path

from tinytorch.threads import BLAS_THREADS, cpu_quota, default_workers, usable_cores

ROOT = Path(__file__).resolve().parent.parent


def cgroup_v2(tmp_path: Path, cpu_max: str) -> Path:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


def cgroup_v1(tmp_path: Path, quota: str, period: str = "100000") -> Path:
    (tmp_path / "cpu").mkdir(parents=True)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return tmp_path


def test_cgroup_v2_quota(tmp_path):
    assert cpu_quota(cgroup_v2(tmp_path, "200000 100000")) == 2.0
    assert cpu_quota(cgroup_v2(tmp_path, "max 100000")) is None


def test_cgroup_v1_quota(tmp_path):
    assert cpu_quota(cgroup_v1(tmp_path, "150000")) == 1.5
    assert cpu_quota(cgroup_v1(tmp_path / "unlimited", "-1")) is None


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpu_quota(tmp_path) is None
    assert default_workers(tmp_path) == usable_cores()


def test_default_workers_are_the_quota_rounded_down_within_the_usable_cores_and_at_least_one(tmp_path, monkeypatch):
    monkeypatch.setattr("tinytorch.threads.usable_cores", lambda: 64)
    assert default_workers(cgroup_v2(tmp_path, "50000 100000")) == 1
    assert default_workers(cgroup_v2(tmp_path, "200000 100000")) == 2
    assert default_workers(cgroup_v2(tmp_path, "450000 100000")) == 4
    assert default_workers(cgroup_v2(tmp_path, "max 100000")) == 64
    monkeypatch.setattr("tinytorch.threads.usable_cores", lambda: 2)
    assert default_workers(cgroup_v2(tmp_path, f"{100000 * 64} 100000")) == 2


def test_the_student_image_gives_every_process_tinytorchs_blas_thread_count():
    """A notebook that imports NumPy before tinytorch still gets one BLAS thread, or its workers would queue."""
    assert f"ENV OPENBLAS_NUM_THREADS={BLAS_THREADS}" in (ROOT / "docker" / "student" / "Dockerfile").read_text()


def test_import_fills_in_unset_thread_variables_and_keeps_set_ones():
    code = "import os, tinytorch; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": "7"}, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(BLAS_THREADS), "7"]
