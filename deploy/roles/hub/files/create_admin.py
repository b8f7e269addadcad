"""Create the first admin's NativeAuthenticator account (run inside the hub container).

    python create_admin.py USERNAME PASSWORD_FILE

The hub's database is the one the hub uses: hub_config.py (the hub's config file) makes its URL from the
course config. Prints "created USERNAME" or "exists USERNAME": an existing account (and its
password, which its owner may have changed) is never touched.
"""
import os
import sys
from pathlib import Path

import bcrypt
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo
from tinytorch_hub_config import load_hub_config  # the hub image's


def main() -> None:
    username, password_file = sys.argv[1:3]
    hub_config = load_hub_config()
    cfg = hub_config.load_course_config(os.environ.get(hub_config.CONFIG_PATH_ENV, hub_config.DEFAULT_CONFIG_PATH))
    db_url = hub_config.hub_db_url(cfg)
    password = Path(password_file).read_text().strip().encode()
    db = orm.new_session_factory(db_url)()
    if not orm.inspect(db.bind).has_table("users_info"):
        UserInfo.__table__.create(db.bind)
    if UserInfo.find(db, username):
        print(f"exists {username}")
        return
    db.add(UserInfo(username=username, password=bcrypt.hashpw(password, bcrypt.gensalt()), is_authorized=True))
    db.commit()
    print(f"created {username}")


if __name__ == "__main__":
    main()
