"""Run one of the hub's page services as the course's grader: ``python -m tinytorch_service formgrader``.

The hub container's supervisor (supervisord.conf) starts this beside JupyterHub for the formgrader, the
grading page and the progress page, and again whenever one exits. What each runs, as whom, where and with
which environment comes from the course config through hub_config.page_service_process (the one place).
"""
from __future__ import annotations

import os
import sys

from tinytorch_hub_config import load_hub_config


def main(argv: list[str]) -> None:
    hub_config = load_hub_config()
    if len(argv) != 2:
        sys.exit(f"usage: python -m tinytorch_service {'|'.join(hub_config.PAGE_SERVICES)}")
    try:
        cfg = hub_config.load_course_config(os.environ.get(hub_config.CONFIG_PATH_ENV, hub_config.DEFAULT_CONFIG_PATH))
        process = hub_config.page_service_process(cfg, argv[1])
    except hub_config.CourseConfigError as error:
        sys.exit(f"tinytorch_service {argv[1]}: {error}")
    # The grader's passwd entry (JupyterHub's config adds it too): the formgrader's terminal shows a name.
    hub_config.ensure_passwd_entries({process["user"]: process["uid"]}, process["gid"], process["cwd"])
    os.chdir(process["cwd"])
    os.setgroups([])
    os.setgid(process["gid"])
    os.setuid(process["uid"])
    os.execvpe(process["command"][0], process["command"], process["environment"])


if __name__ == "__main__":
    main(sys.argv)
