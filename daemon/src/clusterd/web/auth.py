"""Who may log in, and with which role: the users file or PAM.

An authenticator is a callable object ``authenticate(name, password) -> role | None``
(``"admin"``, ``"viewer"``, or None for a refusal). It blocks (scrypt, PAM modules): the
app runs it in a thread.

PAM (auth = pam): the password is checked with the ``pam_service`` stack (python-pam,
imported when the first login comes, so the users-file setup never needs it); the role
comes from the groups: a member of ``pam_admin_group`` is an admin, of
``pam_viewer_group`` a viewer, anyone else is refused even with the right password. Note
that pam_unix run by a user other than root can only check passwords when that user may
read /etc/shadow (docs/web.md, "PAM").
"""

from __future__ import annotations

import grp
import logging
import pwd
from typing import Any, Protocol

from clusterd.web.config import WebConfig
from clusterd.web.users import FileAuth

logger = logging.getLogger(__name__)


class Authenticator(Protocol):
    def authenticate(self, name: str, password: str) -> str | None: ...


def groups_of(name: str) -> set[str]:
    """The names of the groups ``name`` belongs to (primary and supplementary)."""
    try:
        primary = pwd.getpwnam(name).pw_gid
    except KeyError:
        return set()
    out = {g.gr_name for g in grp.getgrall() if name in g.gr_mem}
    try:
        out.add(grp.getgrgid(primary).gr_name)
    except KeyError:
        pass
    return out


class PamAuth:
    def __init__(self, service: str, admin_group: str, viewer_group: str,
                 pam_module: Any = None) -> None:
        self.service = service
        self.admin_group = admin_group
        self.viewer_group = viewer_group
        self._pam = pam_module

    def _module(self) -> Any:
        if self._pam is None:
            import pam  # python-pam: only with auth = pam
            self._pam = pam
        return self._pam

    def role_of(self, name: str) -> str | None:
        groups = groups_of(name)
        if self.admin_group in groups:
            return "admin"
        if self.viewer_group in groups:
            return "viewer"
        return None

    def authenticate(self, name: str, password: str) -> str | None:
        p = self._module().pam()
        if not p.authenticate(name, password, service=self.service):
            logger.debug("PAM refused %s: %s (%s)", name, p.reason, p.code)
            return None
        role = self.role_of(name)
        if role is None:
            logger.warning("login by %s refused: the password is right but the user is in "
                           "neither %s (admin) nor %s (viewer)", name, self.admin_group,
                           self.viewer_group)
        return role


def make(conf: WebConfig) -> Authenticator:
    if conf.auth == "pam":
        return PamAuth(conf.pam_service, conf.pam_admin_group, conf.pam_viewer_group)
    return FileAuth(conf.users_file)
