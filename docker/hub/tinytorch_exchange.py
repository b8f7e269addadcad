"""nbgrader exchange plugins for TinyTorch Classroom (installed in the hub image).

nbgrader's default collect only *warns* when a submission directory named
``alice+<assignment>+<time>+<random>`` is owned by someone other than alice, and
then collects it as alice's (newest first), so any student could overwrite
another's grade by dropping a forged directory in the inbound. Each student runs
under a uid of their own (see hub_config.py), so the owner is trustworthy:
``OwnerCheckedExchangeCollect`` skips every submission whose owner is not the
student it names, before choosing each student's latest one.
"""
import glob
import os
import pwd

from nbgrader.exchange.default.collect import ExchangeCollect, groupby


def owner_of(path: str) -> str:
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except KeyError:
        return f"uid {os.stat(path).st_uid}"


class OwnerCheckedExchangeCollect(ExchangeCollect):
    """Collect only submissions owned by the student they claim to come from."""

    def init_src(self):
        super().init_src()  # checks the course and inbound, reads the due date
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        genuine = []
        for path in glob.glob(pattern):
            record = self._path_to_record(path)
            owner = owner_of(path)
            if owner != record["username"]:
                self.log.warning("Skipping %s: it claims to come from %s but is owned by %s",
                                 record["filename"], record["username"], owner)
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
