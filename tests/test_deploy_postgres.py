"""The hub's database and the gradebook on the classroom's PostgreSQL, on a classroom of its own (ttpg).

The classroom is first deployed as classrooms were before, with sqlite files (tinytorch_database=sqlite), and
used: the roster's students and TAs, a user and a group membership the admin added, the admin's account and a
logged-in session, a submission graded in grading containers, written answers graded by a TA in the formgrader.
The next deploy, with PostgreSQL (the default), moves both databases: nothing may be lost, the session goes on,
the files are kept. Then, on PostgreSQL: two TAs grade written answers through the formgrader while
`autograder grade` (deploy/grade.sh) grades another student into the same gradebook, and nothing is lost or
locked; a backup then a restore brings back users, sessions and grades.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from hubclient import HubClient  # noqa: E402

from tests.test_deploy import changed_tasks, snapshot  # noqa: E402

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

NAME = "ttpg"                       # containers, network and volumes: ttpg-*
STATE = Path("/var/tmp/tinytorch-pg")
SRV = STATE / "srv"                 # tinytorch_root of this classroom
SNAPSHOT = STATE / "repo"           # the deploy runs from a copy of the work tree, as tests/test_deploy.py's
PORT = 18953
URL = f"https://127.0.0.1:{PORT}"
COURSE = "tinytorch"
ASSIGNMENT = "01_setup"
ALICE_PASSWORD = "alice's long passphrase 7"
WRITTEN = ["q-setup-overhead", "q-setup-minimum", "q-setup-tracemalloc"]  # its written answers, graded by hand
VARS = {
    "tinytorch_name": NAME,
    "tinytorch_root": str(SRV),
    "hub_bind_address": "127.0.0.1",
    "hub_https_port": PORT,
    "hub_subnet": "172.30.246.0/24",
    "hub_gateway": "172.30.246.1",
    "hub_ip": "172.30.246.2",
    "hub_ip_range": "172.30.246.128/25",
    "hub_student_mem_limit": "1G",
    "course_roster_csv": str(STATE / "roster.csv"),
    "course_datasets_dir": os.environ.get("TINYTORCH_DATASETS", str(ROOT.parent / "shared" / "datasets")),
}


def deploy(database: str, playbook: str = "site.yml", *args: str) -> subprocess.CompletedProcess:
    """deploy/deploy.sh from the snapshot with this classroom's variables and ``tinytorch_database``."""
    (STATE / f"vars-{database}.json").write_text(json.dumps({**VARS, "tinytorch_database": database}))
    result = subprocess.run(["bash", str(SNAPSHOT / "deploy" / "deploy.sh"), "-e", f"@{STATE / f'vars-{database}.json'}",
                             *args], capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "PLAYBOOK": playbook})
    assert result.returncode == 0 or playbook == "restore.yml", (
        f"{playbook} ({database}) failed: exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    if playbook != "teardown.yml" and result.returncode == 0:
        hub_steady()
    return result


def hub_steady(seconds: float = 20, timeout: float = 600) -> None:
    """Wait until the hub has answered for ``seconds`` on end: every test here needs it up."""
    deadline, since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            up = requests.get(f"{URL}/hub/health", verify=str(SRV / "tls" / "hub.crt"), timeout=5).ok
        except requests.RequestException:
            up = False
        since = (since or time.monotonic()) if up else None
        if since and time.monotonic() - since >= seconds:
            return
        time.sleep(1)
    raise AssertionError(f"the hub did not stay up for {seconds} s within {timeout} s")


def docker(*args: str, check: bool = True, user: str | None = None) -> subprocess.CompletedProcess:
    command = ["docker", *args] if user is None else ["docker", "exec", "-u", user, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert not check or result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


def in_hub(*command: str) -> subprocess.CompletedProcess:
    """A command in the hub container as the course's grader, in the course directory (as TAs' commands run)."""
    return docker("-w", "/srv/nbgrader/course", f"{NAME}-hub", *command, user=f"grader-{COURSE}")


def grade(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYTORCH_ROOT": str(SRV), "TINYTORCH_NAME": NAME}
    result = subprocess.run(["bash", str(SNAPSHOT / "deploy" / "grade.sh"), ASSIGNMENT, "--no-progress", *args],
                            env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def hub() -> HubClient:
    return HubClient(URL, (SRV / "secrets" / "api_token").read_text().strip(), ca=str(SRV / "tls" / "hub.crt"))


def browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would override the hub's certificate
    session.verify = str(SRV / "tls" / "hub.crt")
    return session


def form_xsrf(session: requests.Session, path: str) -> str:
    """The XSRF token the hub's page at ``path`` puts in its form (as a browser would post it back)."""
    page = session.get(f"{URL}{path}", timeout=30)
    page.raise_for_status()
    return re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text).group(1)


def log_in(name: str, password: str) -> requests.Session:
    """A browser's session: the login form, with its XSRF token."""
    session = browser()
    answer = session.post(f"{URL}/hub/login", timeout=30, allow_redirects=False, data={
        "username": name, "password": password, "_xsrf": form_xsrf(session, "/hub/login")})
    assert answer.status_code in (200, 302) and logged_in(session), f"{name} could not log in: {answer.status_code}"
    return session


def sign_up(name: str, password: str, admin: requests.Session) -> requests.Session:
    """``name`` signs up on the hub's form, the admin approves it (a POST with the XSRF token), ``name`` logs in."""
    session = browser()
    session.post(f"{URL}/hub/signup", timeout=30, data={
        "username": name, "signup_password": password, "signup_password_confirmation": password,
        "_xsrf": form_xsrf(session, "/hub/signup")}).raise_for_status()
    admin.post(f"{URL}/hub/authorize/{name}", timeout=30,
               data={"_xsrf": form_xsrf(admin, "/hub/authorize")}).raise_for_status()
    return log_in(name, password)


def same_cookies(session: requests.Session) -> requests.Session:
    """Another browser holding ``session``'s cookies (the same login, kept apart from what answers do to them)."""
    copy = browser()
    copy.cookies.update(session.cookies.copy())
    return copy


def logged_in(session: requests.Session) -> bool:
    return session.get(f"{URL}/hub/home", allow_redirects=False, timeout=30).status_code == 200


def formgrader(token: str, method: str, path: str, **kwargs) -> requests.Response:
    """The formgrader's own API (what its pages call), as the TA whose token this is."""
    return requests.request(method, f"{URL}/services/{COURSE}/formgrader/api/{path}", timeout=60,
                            verify=str(SRV / "tls" / "hub.crt"), headers={"Authorization": f"token {token}"}, **kwargs)


def put(token: str, path: str, body: dict) -> None:
    answer = formgrader(token, "PUT", path, json=body)
    assert answer.status_code == 200, f"PUT {path}: {answer.status_code} {answer.text[:500]}"


def ta_token(name: str) -> str:
    answer = hub().api("POST", f"/users/{name}/tokens", json={"note": "test", "expires_in": 7200})
    return answer.json()["token"]


def gradebook():
    """The gradebook the course directory's nbgrader commands open (sqlite file or PostgreSQL), from the host."""
    from nbgrader.api import Gradebook

    from autograder.nbgrader_adapter import course_gradebook_url
    return Gradebook(course_gradebook_url(SRV / "course"), COURSE)


def grades_of(student: str) -> dict:
    """Every grade and comment of ``student``'s 01_setup: cell name -> (auto, manual, comment)."""
    with gradebook() as book:
        notebook = book.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        comments = {c.name: c.manual_comment for c in notebook.comments}
        return {g.name: (g.auto_score, g.manual_score, comments.get(g.name)) for g in notebook.grades}


def grade_ids(student: str) -> dict[str, tuple[str, str]]:
    """Written answers of ``student``: cell name -> (grade id, comment id)."""
    with gradebook() as book:
        notebook = book.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        comments = {c.name: c.id for c in notebook.comments}
        return {g.name: (g.id, comments[g.name]) for g in notebook.grades if g.name in WRITTEN}


def submit_reference(student: str, tmp_path: Path) -> None:
    """``student`` fetches 01_setup and submits the course's own notebook (its solutions) through the exchange."""
    import nbformat

    from autograder.coursedir import nbgrader_notebook
    from course.build.sources import find_module
    client = hub()
    client.start_server(student)
    container = f"{NAME}-student-{student}"
    notebook = tmp_path / f"{student}.ipynb"
    nbformat.write(nbgrader_notebook(find_module(ASSIGNMENT)), notebook)
    docker("exec", "-u", student, "-w", "/home/student", container, "sh", "-c",
           f"test -d {ASSIGNMENT} || nbgrader fetch_assignment {ASSIGNMENT} --course {COURSE}")
    docker("cp", str(notebook), f"{container}:/home/student/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    docker("exec", container, "chown", student, f"/home/student/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    docker("exec", "-u", student, "-w", "/home/student", container, "nbgrader", "submit", ASSIGNMENT, "--course", COURSE)
    client.stop_server(student)


def hub_state() -> dict:
    """What the hub knows of its users: name -> (admin, groups)."""
    return {u["name"]: (u["admin"], sorted(u["groups"])) for u in hub().api("GET", "/users").json()}


def take_down() -> None:
    deploy("postgresql", "teardown.yml", "-e", "teardown_remove_data=true")


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """A classroom used on sqlite, then deployed with PostgreSQL; what it held before the move."""
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "roster.csv").write_text("username,role\nalice,student\nbob,student\ntina,ta\ntom,ta\n")
    snapshot(SNAPSHOT)
    take_down()  # whatever an interrupted run left
    tmp = tmp_path_factory.mktemp("pg")
    started = time.perf_counter()
    deploy("sqlite")
    print(f"\nsqlite deploy: {time.perf_counter() - started:.0f} s")
    assert (SRV / "hub" / "jupyterhub.sqlite").is_file() and (SRV / "course" / "gradebook.db").is_file()
    client = hub()
    client.create_user("carol")  # the admin adds a student by hand: a user and a group the roster never named
    client.api("POST", f"/groups/nbgrader-{COURSE}/users", json={"users": ["carol"]})
    admin = log_in("admin", (SRV / "secrets" / "admin_password").read_text().strip())
    alice = sign_up("alice", ALICE_PASSWORD, admin)  # an account of her own, and a session in her browser
    in_hub("nbgrader", "release_assignment", ASSIGNMENT, "--force")
    submit_reference("alice", tmp)
    grade()
    tina = ta_token("tina")
    for cell, (grade_id, comment_id) in grade_ids("alice").items():
        put(tina, f"grade/{grade_id}", {"manual_score": WRITTEN.index(cell) + 1})
        put(tina, f"comment/{comment_id}", {"manual_comment": f"tina on {cell}"})
    before = {"hub": hub_state(), "alice": grades_of("alice")}
    assert before["hub"]["carol"][1] == [f"nbgrader-{COURSE}"] and before["alice"]["q-setup-minimum"][1] == 2

    started = time.perf_counter()
    result = deploy("postgresql")
    print(f"deploy with PostgreSQL (the move): {time.perf_counter() - started:.0f} s")
    yield {"before": before, "admin": admin, "alice": alice, "deploy": result, "tmp": tmp}
    take_down()
    assert not docker("ps", "-aq", "--filter", f"name={NAME}-").stdout.strip(), "teardown left containers"
    assert not docker("volume", "ls", "-q", "--filter", f"name={NAME}-postgres").stdout.strip()
    subprocess.run(["rm", "-rf", str(STATE)], check=True)


def test_a_sqlite_classroom_moves_to_postgresql_without_losing_users_sessions_or_grades(moved):
    assert "hub: moved " in moved["deploy"].stdout and "gradebook: moved " in moved["deploy"].stdout
    assert hub_state() == moved["before"]["hub"]            # users, admins and groups, the admin's change too
    assert grades_of("alice") == moved["before"]["alice"]   # autograded scores, hand grades and comments
    assert logged_in(moved["admin"]) and logged_in(moved["alice"])  # the sessions opened on sqlite go on
    log_in("alice", ALICE_PASSWORD)                                    # accounts and password hashes moved
    # the files are kept beside, no longer read; the course's gradebook is PostgreSQL's, as everyone reads it
    assert (SRV / "hub" / "jupyterhub.sqlite.pre-postgresql").is_file()
    assert (SRV / "course" / "gradebook.db.pre-postgresql").is_file()
    assert not (SRV / "hub" / "jupyterhub.sqlite").exists() and not (SRV / "course" / "gradebook.db").exists()
    assert "postgresql+psycopg2://gradebook@/gradebook" in (SRV / "course" / "nbgrader_config.py").read_text()
    # only the database's socket: no network, no port; the passwords are the host's, in no URL or image
    inspect = json.loads(docker("inspect", f"{NAME}-postgres").stdout)[0]
    assert inspect["HostConfig"]["NetworkMode"] == "none" and not inspect["NetworkSettings"]["Ports"]
    password = (SRV / "secrets" / "postgres_gradebook_password").read_text().strip()
    assert len(password) == 64 and password not in (SRV / "course" / "nbgrader_config.py").read_text()
    assert oct((SRV / "database" / "gradebook.pgpass").stat().st_mode & 0o777) == "0o600"
    # a student's server cannot reach it: no socket there, and the database's folder is not mounted
    hub().start_server("alice")
    mounts = json.loads(docker("inspect", f"{NAME}-student-alice").stdout)[0]["Mounts"]
    assert not [m for m in mounts if "database" in m["Source"]], mounts
    hub().stop_server("alice")


def test_a_second_deploy_moves_nothing_and_a_deploy_back_to_sqlite_is_refused(moved):
    again = deploy("postgresql")
    assert "hub: moved" not in again.stdout and "gradebook: moved" not in again.stdout
    # (on a shared host the last task may remove tags other classrooms left behind: not this classroom's change)
    prune = "images : Ensure tags of earlier builds are removed where no container uses them."
    assert set(changed_tasks(again.stdout)) <= {prune}, again.stdout[-3000:]
    back = subprocess.run(["bash", str(SNAPSHOT / "deploy" / "deploy.sh"), "-e", f"@{STATE / 'vars-sqlite.json'}"],
                          capture_output=True, text=True, timeout=900)
    assert back.returncode != 0 and "this classroom's databases are in PostgreSQL" in back.stdout, back.stdout[-3000:]
    assert hub_state() == moved["before"]["hub"]


def test_two_tas_grade_written_answers_while_the_autograder_writes_the_same_gradebook(moved):
    """tina scores alice's written answers and tom comments on them, through the formgrader, as fast as it
    answers, for as long as deploy/grade.sh grades bob into the same gradebook. Every answer is 200, the
    gradebook holds each TA's last value, and bob's grades are there."""
    submit_reference("bob", moved["tmp"])
    cells = grade_ids("alice")
    tokens = {"tina": ta_token("tina"), "tom": ta_token("tom")}
    last: dict[tuple[str, str], object] = {}
    failures: list[str] = []
    writes = {"tina": 0, "tom": 0}
    grading = threading.Event()

    def work(ta: str) -> None:
        n = 0
        while grading.is_set() or n < 3:
            n += 1
            for cell, (grade_id, comment_id) in cells.items():
                if ta == "tina":
                    value, path, body = n % 3, f"grade/{grade_id}", {"manual_score": n % 3}
                else:
                    value, path, body = f"tom {n}", f"comment/{comment_id}", {"manual_comment": f"tom {n}"}
                answer = formgrader(tokens[ta], "PUT", path, json=body)
                if answer.status_code != 200:
                    failures.append(f"{ta} {path}: {answer.status_code} {answer.text[:300]}")
                else:
                    last[(ta, cell)] = value
                    writes[ta] += 1

    grading.set()
    tas = [threading.Thread(target=work, args=(ta,)) for ta in tokens]
    for thread in tas:
        thread.start()
    try:
        grade()
    finally:
        grading.clear()
        for thread in tas:
            thread.join(timeout=300)
    print(f"\nwrites during grading: {writes}")
    assert failures == [], failures[:5]
    assert min(writes.values()) >= 30, writes  # they did overlap the grading
    now = grades_of("alice")
    for cell in cells:
        assert now[cell][1] == last[("tina", cell)] and now[cell][2] == last[("tom", cell)], (cell, now[cell])
    bob = grades_of("bob")
    assert all(bob[name][0] is not None for name in bob if name.startswith("test-setup")), bob
    logs = docker("logs", f"{NAME}-hub").stderr + docker("logs", f"{NAME}-postgres").stderr
    assert "database is locked" not in logs and "deadlock detected" not in logs


def test_backup_then_restore_brings_back_users_sessions_and_grades(moved):
    alice_browser = moved["alice"]
    assert logged_in(alice_browser)
    users, alice = hub_state(), grades_of("alice")
    backup = deploy("postgresql", "backup.yml")
    archive = re.search(r"Backup written: (\S+\.tar\.gz)", backup.stdout).group(1)
    listing = subprocess.run(["tar", "-tzf", archive], capture_output=True, text=True, check=True).stdout
    assert "./postgresql/jupyterhub.dump" in listing and "./postgresql/gradebook.dump" in listing
    assert ".s.PGSQL" not in listing
    # after the backup: a user added, two removed (alice's session ends with her), a grade and a comment changed
    client = hub()
    client.create_user("dave")
    cell = WRITTEN[0]
    grade_id, comment_id = grade_ids("alice")[cell]
    tom = ta_token("tom")
    put(tom, f"grade/{grade_id}", {"manual_score": 0.5})
    put(tom, f"comment/{comment_id}", {"manual_comment": "after the backup"})
    client.api("DELETE", "/users/carol")
    client.api("DELETE", "/users/alice")
    assert not logged_in(same_cookies(alice_browser))  # (a copy: the hub clears a cookie it no longer knows)
    assert grades_of("alice")[cell] != alice[cell]

    restored = deploy("postgresql", "restore.yml", "-e", f"restore_archive={archive}")
    assert restored.returncode == 0, restored.stdout[-6000:]
    assert hub_state() == users                    # dave gone, alice and carol back, groups as they were
    assert logged_in(alice_browser)                # her session is back: the browser she used is logged in again
    assert grades_of("alice") == alice             # the grade and the comment as they were
    log_in("alice", ALICE_PASSWORD)


def test_a_restore_of_dumps_needs_the_database_and_changes_nothing_without_it(moved, tmp_path):
    """An archive with PostgreSQL dumps, restored where the classroom's PostgreSQL does not exist (another
    classroom's name): refused before anything changes, saying to deploy first."""
    archive = sorted((Path(f"{SRV}-backups")).glob(f"{NAME}-*.tar.gz"))[-1]
    other = {**VARS, "tinytorch_name": "ttpgnone", "tinytorch_root": str(tmp_path / "root")}
    (tmp_path / "vars.json").write_text(json.dumps(other))
    result = subprocess.run(["bash", str(SNAPSHOT / "deploy" / "deploy.sh"), "-e", f"@{tmp_path / 'vars.json'}",
                             "-e", f"restore_archive={archive}"], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PLAYBOOK": "restore.yml"})
    assert result.returncode != 0 and "deploy the classroom first" in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "root").exists()
