"""Errors a user can cause. The CLI prints them as one line and exits with status 2, without a traceback."""


class UserError(Exception):
    """A bad option, name or value given by the user; the message says what is wrong and how to fix it."""


class DataError(UserError):
    """Missing, unreadable or malformed data; the message names the file, the problem and the fix."""
