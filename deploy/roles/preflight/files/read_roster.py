"""Read the course roster CSV and print it as JSON: {"students": [...], "tas": [...], "names": {...}}.

    python read_roster.py ROSTER.csv        (an empty argument: no roster)

The CSV has a header row with at least the columns ``username`` and ``role``
(``student`` or ``ta``), and optionally ``name`` (the person's name, which formgrader shows); other
columns are ignored. Every bad row is reported
with its line number and the deploy stops before changing anything (exit 1).
"""
import csv
import json
import re
import sys
from pathlib import Path

USERNAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # the rule hub_config.py applies
ROLES = {"student": "students", "ta": "tas"}
MAX_NAME = 200  # hub_config.py's limit


def read_roster(path: str) -> tuple[dict, list[str]]:
    roster: dict = {"students": [], "tas": [], "names": {}}
    if not path:
        return roster, []
    file = Path(path)
    if not file.is_file():
        return roster, [f"{path}: no such file (course_roster_csv)"]
    problems = []
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = {"username", "role"} - set(header)
        if missing:
            return roster, [f"{path}: line 1 must be a header naming the columns username and role "
                            f"(missing: {', '.join(sorted(missing))})"]
        reader.fieldnames = header
        seen = {}
        for row in reader:
            line = reader.line_num
            username = (row.get("username") or "").strip()
            role = (row.get("role") or "").strip().lower()
            if not username and not role:
                continue  # blank line
            if not USERNAME.match(username):
                problems.append(f"{path}: line {line}: username {username!r} must be lower-case letters, "
                                "digits, '_' or '-', starting with a letter, at most 32 characters")
                continue
            if role not in ROLES:
                problems.append(f"{path}: line {line}: role {role!r} for {username} must be student or ta")
                continue
            if username in seen:
                problems.append(f"{path}: line {line}: {username} already listed on line {seen[username]}")
                continue
            name = " ".join((row.get("name") or "").split())  # one line, single spaces
            if len(name) > MAX_NAME or not name.isprintable():
                problems.append(f"{path}: line {line}: the name of {username} must be printable and at most "
                                f"{MAX_NAME} characters")
                continue
            seen[username] = line
            roster[ROLES[role]].append(username)
            if name:
                roster["names"][username] = name
    return roster, problems


def main() -> int:
    roster, problems = read_roster(sys.argv[1] if len(sys.argv) > 1 else "")
    print(json.dumps({"roster": roster, "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
