"""NativeAuthenticator where an admin approves every sign-up, roster or not, and only by a POST.

Upstream pre-approves a sign-up whose name is in ``allowed_users`` (our roster): whoever signs
up first under a student's name would own that account. Here the roster only says who *may*
sign up and log in; the admin still approves each sign-up at /hub/authorize, where a name
claimed by the wrong person shows up before it can log in. ``open_signup`` keeps its meaning.

Upstream's /hub/authorize/<name> (approve or unapprove) and /hub/discard/<name> act on a plain
GET: any page on another origin that sends the logged-in admin's browser there (a link, a
redirect; the hub's SameSite=Lax cookie goes along on a top-level GET) approved a waiting
sign-up. Here both act only on a POST carrying the admin's XSRF token (JupyterHub checks it
before the handler runs, and the handler checks again); a GET changes nothing and answers 405.
The buttons on /hub/authorize are forms that post it. tests/test_deploy.py attacks it in Chromium.

Enrolment: without a roster (``enrol_on_approval``), the sign-up the admin approves becomes a student of
the course (the hub group ``nbgrader-<course>``, where nbgrader's Assignments tab looks), unless the
admin already put them in a course group. After that the hub's admin page (Groups) decides.
"""
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import (
    AuthorizationAreaHandler,
    DiscardHandler,
    ToggleAuthorizationHandler,
    admin_users_scope,
)
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo
from tornado import web
from traitlets import Bool, Unicode

# Upstream's authorization-area.html (NativeAuthenticator 1.3.0) with each link that acted on a GET
# turned into a form that posts the XSRF token; "Change password" only opens a form, it stays a link.
AUTHORIZATION_AREA = """{% extends "page.html" %}
{% macro action(verb, name, label, css) -%}
<form method="post" action="{{ base_url }}{{ verb }}/{{ name }}" style="display: inline">
  <input type="hidden" name="_xsrf" value="{{ xsrf }}"/>
  <button type="submit" class="btn {{ css }}">{{ label }}</button>
</form>
{%- endmacro %}
{% block main %}
<div class="container">
    <h1>Authorization area</h1>
    <table class="table">
        <thead>
            <tr>
                <th>Username</th>
                {% if ask_email %}<th>Email</th>{% endif %}
                <th>Has 2FA?</th>
                <th>Is authorized?</th>
                <th></th>
                <th></th>
                <th></th>
            </tr>
        </thead>
        <tbody>
            {% for user in users %}
            <tr {% if user.is_authorized %}class="success" {% endif %}id="{{ user.username }}">
                <td>{{ user.username }}</td>
                {% if ask_email %}<td>{{ user.email }}</td>{% endif %}
                <td>{{ user.has_2fa }}</td>
                <td>{{ "Yes" if user.is_authorized else "No" }}</td>
                {% if user.is_authorized %}
                <td>{{ action("authorize", user.username, "Unauthorize", "btn-default") }}</td>
                {% else %}
                <td>{{ action("authorize", user.username, "Authorize", "btn-jupyter") }}</td>
                {% endif %}
                <td><a class="btn btn-jupyter" href="{{ base_url }}change-password/{{ user.username }}" role="button">Change password</a></td>
                <td>{% if not user.is_authorized %}{{ action("discard", user.username, "Discard", "btn-jupyter") }}{% endif %}</td>
            </tr>
            {% endfor %}
        </tbody>
    </table>
</div>
{% endblock %}
"""


class PostOnlyAuthorizationAreaHandler(AuthorizationAreaHandler):
    """/hub/authorize: the sign-ups, with buttons that post (upstream's links acted on a GET)."""

    @admin_users_scope
    async def get(self):
        template = self.settings["jinja2_env"].from_string(AUTHORIZATION_AREA)
        html = await template.render_async(**self.template_namespace, users=self.db.query(UserInfo).all(),
                                           ask_email=self.authenticator.ask_email_on_signup)
        self.finish(html)


def _refuse_get(self, *args):
    raise web.HTTPError(405, "This changes a sign-up: use the buttons on /hub/authorize.")


class PostOnlyToggleAuthorizationHandler(ToggleAuthorizationHandler):
    """/hub/authorize/<name>: approve or unapprove, on a POST with the XSRF token only."""

    get = admin_users_scope(_refuse_get)

    @admin_users_scope
    async def post(self, slug):
        self.check_xsrf_cookie()
        await ToggleAuthorizationHandler.get.__wrapped__(self, slug)
        info = UserInfo.find(self.db, slug)
        if info is not None and info.is_authorized and self.authenticator.enrol_on_approval:
            self.enrol(slug)

    def enrol(self, name):
        """The approved sign-up joins the students' group, unless an admin already placed them."""
        auth = self.authenticator
        user = self.user_from_username(name).orm_user
        placed = {group.name for group in user.groups} & {auth.student_group, auth.ta_group}
        if placed or user.admin or not auth.student_group:
            return
        group = orm.Group.find(self.db, auth.student_group)
        if group is None:
            group = orm.Group(name=auth.student_group)
            self.db.add(group)
        user.groups.append(group)
        self.db.commit()
        self.log.info("Enrolled %s in %s on approval", name, auth.student_group)


class PostOnlyDiscardHandler(DiscardHandler):
    """/hub/discard/<name>: forget a sign-up not approved, on a POST with the XSRF token only."""

    get = admin_users_scope(_refuse_get)

    @admin_users_scope
    async def post(self, user_name):
        self.check_xsrf_cookie()
        await DiscardHandler.get.__wrapped__(self, user_name)


POST_ONLY = {
    AuthorizationAreaHandler: PostOnlyAuthorizationAreaHandler,
    ToggleAuthorizationHandler: PostOnlyToggleAuthorizationHandler,
    DiscardHandler: PostOnlyDiscardHandler,
}


class ApprovedNativeAuthenticator(NativeAuthenticator):
    student_group = Unicode("", config=True, help="the course's students' group (nbgrader-<course>)")
    ta_group = Unicode("", config=True, help="the course's TAs' group (formgrade-<course>)")
    enrol_on_approval = Bool(True, config=True, help="an approved sign-up joins student_group (no roster)")

    def get_authed_users(self):
        """The users an admin approved, and the admins; not everyone on the roster."""
        approved = {info.username for info in UserInfo.all_users(self.db) if info.is_authorized}
        return approved | set(self.admin_users)

    def get_handlers(self, app):
        """Upstream's pages, with the ones that change a sign-up on a GET replaced (see above)."""
        handlers = [(route, POST_ONLY.get(handler, handler)) for route, handler in super().get_handlers(app)]
        missing = set(POST_ONLY) - {handler for _, handler in super().get_handlers(app)}
        if missing:  # another NativeAuthenticator: check its handlers before trusting this file
            raise RuntimeError(f"NativeAuthenticator no longer registers {sorted(h.__name__ for h in missing)}")
        return handlers
