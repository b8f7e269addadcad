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
  the check is refused too;
* dates each submission by its arrival, not by the time the student wrote into
  its folder name and ``timestamp.txt`` (both theirs to backdate): see
  ``record_arrivals``. The collected copy's ``timestamp.txt``, from which
  nbgrader computes lateness, holds the arrival.
"""
import datetime
import fcntl
import glob
import hashlib
import json
import os
import pwd
import shutil
import stat
import sys
import time

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


ARRIVALS = os.path.join("autograder", "arrivals.json")  # in the course directory, where students cannot write


def last_change(path: str) -> float:
    """The newest change time (ctime) of a submission folder and of everything in it: a time no one but the
    kernel sets, and never back."""
    top = os.lstat(path)
    return max([top.st_ctime] + [info.st_ctime for _, info in plain_entries(path, top.st_uid)])


def digest(path: str) -> str:
    """What a submission folder holds (names and bytes), as one SHA-256."""
    uid, total = os.lstat(path).st_uid, hashlib.sha256()
    for rel, info in sorted(plain_entries(path, uid)):
        total.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if stat.S_ISREG(info.st_mode):
            fd = os.open(os.path.join(path, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                check_entry(os.path.join(path, rel), os.fstat(handle.fileno()), uid)
                total.update(hashlib.sha256(handle.read()).digest())
    return total.hexdigest()


def record_arrivals(inbound: str, record_path: str, names: list[str]) -> dict[str, float]:
    """When each submission folder ``names`` in ``inbound`` arrived (seconds since the epoch), kept in
    ``record_path`` (JSON), which students cannot write; returns the arrival of each of ``names`` that is a
    plain submission.

    A folder seen for the first time arrived at its last change (``last_change``): a student can name the folder
    and write ``timestamp.txt`` as they like, but not set a change time back. Seen again unchanged (same
    content), it keeps its recorded arrival, even when its change times moved: a restore from a backup
    writes every file anew, and the backup takes this record along (the deploy's backup records every
    submission just before it archives). Changed since (a file replaced after the due date), it arrived
    at that change. Folders gone from the inbound are forgotten."""
    os.makedirs(os.path.dirname(record_path), exist_ok=True)
    with open(record_path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two collects at once: one reads and writes the record at a time
        try:
            with open(record_path) as handle:
                record = json.load(handle)
        except FileNotFoundError:
            record = {}
        record = {name: entry for name, entry in record.items() if os.path.isdir(os.path.join(inbound, name))}
        for name in names:
            path, known = os.path.join(inbound, name), record.get(name)
            try:
                changed = last_change(path)
                if known and changed <= known["changed"]:
                    continue  # untouched since it was recorded
                content = digest(path)
            except (UnsafeSubmission, OSError):
                continue  # not a plain submission: the collect skips and reports it
            if known and known["digest"] == content:  # the same content written anew (a restore): as it was
                record[name] = {**known, "changed": changed}
            else:
                record[name] = {"digest": content, "changed": changed, "arrived": changed}
        temporary = f"{record_path}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
        os.replace(temporary, record_path)
    return {name: record[name]["arrived"] for name in names if name in record}


def utc(seconds: float) -> datetime.datetime:
    """As nbgrader keeps times: naive UTC."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)


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
        # Each submission's time is its arrival, not the one its folder's name claims.
        self.surveyed = time.time()
        arrivals = record_arrivals(self.inbound_path, os.path.join(self.coursedir.root, ARRIVALS),
                                   [record["filename"] for record in genuine])
        self.arrivals = {}
        for record in genuine:
            claimed = record["timestamp"]
            record["timestamp"] = utc(arrivals[record["filename"]]) if record["filename"] in arrivals else None
            if record["timestamp"] is None:
                self.log.warning("Skipping %s: it changed while it was checked", record["filename"])
            elif claimed < record["timestamp"] - datetime.timedelta(minutes=5):
                self.log.warning("%s claims %s but arrived at %s: dated by its arrival", record["filename"],
                                 claimed, record["timestamp"])
            self.arrivals[record["filename"]] = record["timestamp"]
        genuine = [record for record in genuine if record["timestamp"] is not None]
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
            return
        try:
            moved = last_change(src) >= self.surveyed  # written to while it was dated and copied: dated wrong
        except (UnsafeSubmission, OSError):
            moved = True
        if moved:
            shutil.rmtree(dest, ignore_errors=True)
            self.log.error("Not collected: %s changed while it was collected; collect again", src)
            return
        with open(os.path.join(dest, "timestamp.txt"), "w") as handle:  # what nbgrader's lateness reads
            handle.write(self.arrivals[os.path.basename(src)].strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


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


def main(argv: list[str]) -> int:
    """python -m tinytorch_exchange INBOUND COURSE_ROOT: record the arrival of every submission in INBOUND
    (the deploy's backup runs it in the hub container, as the grader, before it archives)."""
    if len(argv) != 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    inbound, course_root = argv
    names = sorted(name for name in os.listdir(inbound) if name.count("+") >= 2)
    arrivals = record_arrivals(inbound, os.path.join(course_root, ARRIVALS), names)
    print(f"recorded the arrival of {len(arrivals)} submissions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
