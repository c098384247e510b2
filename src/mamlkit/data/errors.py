"""The one exception type of `mamlkit.data`."""

__all__ = ["DataError"]


class DataError(Exception):
    """A dataset on disk or on the network is missing, malformed or fails its checksum.

    The message names the file (or URL) and says how to fix the problem.
    """
