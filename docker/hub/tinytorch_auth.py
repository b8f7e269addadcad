"""NativeAuthenticator where an admin approves every sign-up, roster or not.

Upstream pre-approves a sign-up whose name is in ``allowed_users`` (our roster): whoever signs
up first under a student's name would own that account. Here the roster only says who *may*
sign up and log in; the admin still approves each sign-up at /hub/authorize, where a name
claimed by the wrong person shows up before it can log in. ``open_signup`` keeps its meaning.
"""
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo


class ApprovedNativeAuthenticator(NativeAuthenticator):
    def get_authed_users(self):
        """The users an admin approved, and the admins; not everyone on the roster."""
        approved = {info.username for info in UserInfo.all_users(self.db) if info.is_authorized}
        return approved | set(self.admin_users)
