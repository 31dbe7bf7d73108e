"""Errors the pipeline reports to the user as one line."""


class InputError(Exception):
    """Bad input or configuration: the message names the file or key, what is wrong and the fix."""
