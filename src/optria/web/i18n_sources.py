"""English strings that reach templates as data rather than through ``_()`` calls.

The catalog checker adds these to the extracted message ids, so a nav label or role name
without an Arabic translation fails the i18n test like any template string.
"""

from __future__ import annotations


def data_msgids() -> set[str]:
    from optria.identity import passwords
    from optria.identity.auth import GENERIC_FAILURE, SSO_ONLY, THROTTLED
    from optria.identity.rbac import ROLE_LABELS
    from optria.web.errors import PAGE_TITLES
    from optria.web.templating import NAV, NAV_SECTIONS

    ids = {item.label for item in NAV} | {t for t in NAV_SECTIONS.values() if t}
    ids |= set(ROLE_LABELS.values())
    for title, message in PAGE_TITLES.values():
        ids |= {title, message}
    ids |= {GENERIC_FAILURE, SSO_ONLY, THROTTLED, passwords.RULES_TEXT}
    ids |= {"Password must be at least 10 characters long.", "Password must contain letters and digits.",
            "Password must not contain the username.", "Password is too long.",
            "This account signs in with your organization's single sign-on.",
            "The current password is incorrect.", "The new passwords do not match.",
            "Choose a password different from the current one.", "Sign-in failed."}
    return ids
