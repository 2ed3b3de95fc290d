"""Exceptions with messages a user can act on; the CLI prints them once, without a traceback."""


class CligymError(Exception):
    """Base class: anything cligym reports to a user as a plain one-line error."""


class DockerUnavailableError(CligymError):
    """The Docker daemon cannot be reached."""


class ImageNotFoundError(CligymError):
    """An image the caller needs is not on this machine (and none can be pulled)."""


class SpecError(CligymError):
    """A gold or task spec on disk is malformed; the message names the file and the field."""


class BuildError(CligymError):
    """An image build or a build-context download failed."""


class TestRunError(CligymError):
    """A test command produced no parsable results."""

    __test__ = False  # not a pytest test class
