"""Create the first admin's NativeAuthenticator account (run inside the hub container).

    python create_admin.py USERNAME PASSWORD_FILE DB_URL

Prints "created USERNAME" or "exists USERNAME": an existing account (and its
password, which its owner may have changed) is never touched.
"""
import sys
from pathlib import Path

import bcrypt
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo


def main() -> None:
    username, password_file, db_url = sys.argv[1:4]
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
