"""LMS downloads, opened as hostile archives: ``SafeExtractor``, nbgrader zip_collect's extractor here.

A Canvas "Download submissions" zip holds one file per student upload, named
``<lastfirst>_<id>_<id>_<uploaded name>``. Students choose what they upload, so each member is untrusted:
nbgrader's own extractor unpacks archives inside the archive (a student's zip could then name files after
a classmate), keeps the stored paths (``../`` or absolute ones land anywhere the grader may write) and the
stored mode bits (setuid), and reads a member whole whatever its size. Here:

* only regular files are extracted, each under its own base name in the extraction folder (no path the
  archive stores is ever used), written fresh with mode 0644;
* archives inside the archive, links and anything not a plain file are skipped and reported;
* a member larger than ``MAX_MEMBER_BYTES`` once decompressed (counted while it is read, not from the
  header it declares), an archive with more than ``MAX_MEMBERS`` members, a name taken twice, or a file
  that is not a zip at all: that one file is skipped and reported, the rest is extracted.

What was skipped is listed in ``SKIPPED_LOG`` beside the extracted files, which ``Course.zip_collect``
reports to the TA.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from nbgrader.plugins import ExtractorPlugin

MAX_MEMBER_BYTES = 64 * 2**20   # one uploaded notebook, decompressed; a course notebook is well under 1 MB
MAX_MEMBERS = 5_000             # files in one LMS download
ARCHIVES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar")
SKIPPED_LOG = ".skipped.json"   # in the extraction folder: [why, ...]


class ArchiveProblem(Exception):
    """One member (or one whole file) of a download is not extracted; the message says why."""


def member_name(info: zipfile.ZipInfo) -> str:
    """The base name a member is extracted under, or ArchiveProblem when it is not a plain uploaded file."""
    name = PurePosixPath(info.filename.replace("\\", "/")).name
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveProblem(f"{info.filename}: a link, not a file")
    if mode and not stat.S_ISREG(mode):
        raise ArchiveProblem(f"{info.filename}: not a regular file")
    if not name or name in (".", "..") or "\0" in name or name.startswith("."):
        raise ArchiveProblem(f"{info.filename!r}: not a file name")
    if name.lower().endswith(ARCHIVES):
        raise ArchiveProblem(f"{info.filename}: an archive inside the archive is not opened (upload the notebook itself)")
    return name


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Decompress one member into ``target`` (a new file, mode 0644), at most MAX_MEMBER_BYTES."""
    written = 0
    with archive.open(info) as source, open(target, "xb") as out:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > MAX_MEMBER_BYTES:
                out.close()
                target.unlink()
                raise ArchiveProblem(f"{info.filename}: larger than {MAX_MEMBER_BYTES // 2**20} MB decompressed")
            out.write(chunk)
    os.chmod(target, 0o644)


def extract_download(path: Path, out_dir: Path) -> list[str]:
    """Extract one LMS download into ``out_dir`` as the module docstring says; return what was skipped, and why."""
    skipped = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        return [f"{path.name}: not a zip file ({error}); nothing in it was collected"]
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_MEMBERS:
            return [f"{path.name}: {len(members)} files, over the limit of {MAX_MEMBERS}; nothing in it was collected"]
        out_dir.mkdir(parents=True, exist_ok=True)
        for info in members:
            try:
                name = member_name(info)
                if (out_dir / name).exists():
                    raise ArchiveProblem(f"{info.filename}: a second file named {name}")
                copy_member(archive, info, out_dir / name)
            except ArchiveProblem as problem:
                skipped.append(f"{path.name}: {problem}")
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as error:  # corrupt or encrypted member
                (out_dir / PurePosixPath(info.filename).name).unlink(missing_ok=True)
                skipped.append(f"{path.name}: {info.filename}: unreadable ({error})")
    return skipped


class SafeExtractor(ExtractorPlugin):
    """nbgrader zip_collect's extractor (``--ZipCollectApp.extractor_plugin``): every download in the archive
    folder extracted by ``extract_download``; what is skipped is logged and kept in SKIPPED_LOG."""

    def extract(self, archive_path: str, extracted_path: str) -> None:
        out, skipped = Path(extracted_path), []
        for path in sorted(Path(archive_path).iterdir()):
            if path.is_file() and not path.is_symlink():
                skipped += extract_download(path, out / path.stem)
        for why in skipped:
            self.log.warning("Skipped: %s", why)
        out.mkdir(parents=True, exist_ok=True)
        (out / SKIPPED_LOG).write_text(json.dumps(skipped, indent=1))


def stage_downloads(zips: list[Path], archive_dir: Path) -> None:
    """Copy the TA's downloads into nbgrader's archive folder (as regular files, whatever they are)."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    for z in zips:
        shutil.copyfile(z, archive_dir / Path(z).name)
