"""The errors wardcast raises.

    WardcastError
    ├── UserError          a mistake the user can fix; the command line exits 2
    │   ├── ScenarioError  a bad option or scenario file
    │   └── EndpointError  an endpoint that cannot be parsed or bound
    └── RunError           the harness could not complete a run

Library code raises these; only the command line turns them into a message and
an exit code.
"""


class WardcastError(Exception):
    """Base class of every error wardcast raises on purpose."""


class UserError(WardcastError):
    """A mistake in what the user asked for, with the fix in its message."""


class ScenarioError(UserError):
    """A scenario setting, option or file that cannot be used as given."""


class EndpointError(UserError):
    """An endpoint that cannot be parsed, bound or reached."""


class RunError(WardcastError):
    """The harness itself failed to complete a run."""
