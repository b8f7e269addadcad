"""nbgrader exchange plugins for TinyTorch Classroom (installed in the hub image).

nbgrader's default collect only *warns* when a submission directory named
``alice+<assignment>+<time>+<random>`` is owned by someone other than alice, and
then collects it as alice's (newest first), so any student could overwrite
another's grade by dropping a forged directory in the inbound. And it copies a
submission with ``shutil.copytree``, which follows symbolic links: a student who
links their notebook to a classmate's collected notebook (or the instructor's
source notebook) would be graded on that work and get it back in their feedback.

Each student runs under a uid of their own (see hub_config.py), so owners are
trustworthy. ``OwnerCheckedExchangeCollect``:

* skips every submission whose folder is not owned by the student it names;
* skips (and reports) every submission holding anything but folders and regular
  files owned by that student: a symbolic link, a hard link to someone else's
  file, a FIFO, a socket or a device;
* copies what it collects without ever following a link (each file is opened
  with ``O_NOFOLLOW`` and checked again once open), so a link swapped in after
  the check is refused too.
"""
import glob
import os
import pwd
import shutil
import stat

from nbgrader.auth import JupyterHubAuthPlugin
from nbgrader.exchange.default.collect import ExchangeCollect, groupby
from nbgrader.utils import ignore_patterns

MAX_ENTRIES = 10_000  # files and folders in one submission: more is not a notebook assignment


class UnsafeSubmission(Exception):
    """A submission holds something the collect must not copy; the message says what."""


def owner_of(path: str) -> str:
    uid = os.lstat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_entry(path: str, info: os.stat_result, uid: int) -> None:
    """A folder or regular file owned by ``uid``, or UnsafeSubmission saying what it is instead."""
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeSubmission(f"{path} is a symbolic link")
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        raise UnsafeSubmission(f"{path} is not a regular file or folder")
    if info.st_uid != uid:
        raise UnsafeSubmission(f"{path} belongs to uid {info.st_uid}, not to the submitter (uid {uid})")


def plain_entries(top: str, uid: int, ignore=None):
    """Every entry under ``top`` (relative path, lstat), checked, without recursion and without following
    links; ``ignore(folder, names)`` drops names as shutil.copytree's ignore does."""
    pending, seen = [""], 0
    while pending:
        rel = pending.pop()
        folder = os.path.join(top, rel)
        names = sorted(os.listdir(folder))
        skipped = set(ignore(folder, names)) if ignore else set()
        for name in names:
            if name in skipped:
                continue
            seen += 1
            if seen > MAX_ENTRIES:
                raise UnsafeSubmission(f"{top} holds more than {MAX_ENTRIES} files and folders")
            path = os.path.join(rel, name)
            info = os.lstat(os.path.join(top, path))
            check_entry(os.path.join(top, path), info, uid)
            yield path, info
            if stat.S_ISDIR(info.st_mode):
                pending.append(path)


def copy_plain_file(src: str, dest: str, uid: int) -> None:
    """Copy one regular file owned by ``uid``: opened without following a link, checked again once open."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        check_entry(src, os.fstat(fd), uid)
        with os.fdopen(os.dup(fd), "rb") as source, open(dest, "xb") as target:
            shutil.copyfileobj(source, target)
    finally:
        os.close(fd)
    os.chmod(dest, 0o644)


class OwnerCheckedExchangeCollect(ExchangeCollect):
    """Collect only submissions owned by the student they claim to come from, holding only their own plain files."""

    def unsafe(self, path: str, username: str) -> str:
        """Why the submission at ``path`` must not be collected as ``username``'s ('' when it may)."""
        owner = owner_of(path)
        if owner != username:
            return f"it claims to come from {username} but is owned by {owner}"
        try:
            size = sum(info.st_size for _, info in plain_entries(path, os.lstat(path).st_uid, self.ignore())
                       if stat.S_ISREG(info.st_mode))
        except (UnsafeSubmission, OSError) as error:
            return str(error)
        if size > 1000 * self.coursedir.max_dir_size:  # nbgrader's own limit (kB), as its do_copy checks it
            return f"it holds {size} bytes, over the limit of {1000 * self.coursedir.max_dir_size}"
        return ""

    def ignore(self):
        return ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                               max_file_size=self.coursedir.max_file_size)

    def init_src(self):
        super().init_src()  # checks the course and inbound, reads the due date
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        genuine = []
        for path in glob.glob(pattern):
            record = self._path_to_record(path)
            why = self.unsafe(path, record["username"])
            if why:
                self.log.warning("Skipping %s: %s", record["filename"], why)
                continue
            genuine.append(record)
        # As nbgrader does: each student's newest submission, or the newest one
        # before the due date when before_duedate is set.
        self.src_records = []
        for records in groupby(genuine, lambda item: item["username"]).values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in records if r["timestamp"] <= self.duedate]
                records = on_time or records
            self.src_records.append(records[0])

    def do_copy(self, src, dest, log=None):
        """Copy a checked submission without following links; if it changed into something unsafe since the
        check, nothing of it is kept (the error is logged; the rest of the batch is collected)."""
        uid = os.lstat(src).st_uid
        try:
            os.makedirs(dest)
            for rel, info in plain_entries(src, uid, self.ignore()):
                if stat.S_ISDIR(info.st_mode):
                    os.makedirs(os.path.join(dest, rel))
                else:
                    copy_plain_file(os.path.join(src, rel), os.path.join(dest, rel), uid)
        except (UnsafeSubmission, OSError) as error:
            shutil.rmtree(dest, ignore_errors=True)
            self.log.error("Not collected: %s changed since it was checked: %s", src, error)


class FormgraderAuthPlugin(JupyterHubAuthPlugin):
    """nbgrader's JupyterHub plugin, except for the formgrader's own courses.

    The formgrader runs as the course's grader, a hub user that may never log in: JupyterHub removes a
    blocked user from every group at each start, so asking the hub for the grader's courses found none,
    and formgrader listed no assignment as released ("draft" after a release, then "Destination already
    exists" on the next click). The formgrader serves the one course of its course directory: the hub
    passes its id as TINYTORCH_COURSE_ID (hub_config.py). Students' and TAs' courses still come from
    their hub groups.
    """

    def get_student_courses(self, student_id):
        course = os.environ.get("TINYTORCH_COURSE_ID")
        if student_id == "*" and course:
            return [course]
        return super().get_student_courses(student_id)
