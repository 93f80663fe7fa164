"""User-facing errors: one clear message (file, field, fix), no traceback unless --debug."""


class MedevalError(Exception):
    """Bad input or an unrecoverable condition the user can fix; the message says how."""

    exit_code = 2
