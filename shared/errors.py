"""The exceptions of Watchword.

::

    WatchwordError
    ├── TransientError          retry later: the message stays on its queue
    │   ├── ModelUnavailable    429 / 529 / 5xx / timeout after our retries
    │   ├── VersionConflict     a state write lost the race on its version
    │   └── Retiring            the tenant actor is going away; use a fresh one
    └── PermanentError          retrying cannot help: dead-letter or refuse
        ├── InvalidMessage      an SQS message that is not a communication
        ├── StateViolation      a state that does not fit its alert's schema
        ├── ModelAnswerInvalid  the model's answer broke the contract twice
        └── SpendingLimit       the model provider refuses for billing reasons

Each exception passes its arguments to ``super().__init__`` so that it pickles
across an actor boundary with its message intact.
"""

from __future__ import annotations


class WatchwordError(Exception):
    """Base of every Watchword error."""


class TransientError(WatchwordError):
    """A failure that a later retry may not meet."""


class PermanentError(WatchwordError):
    """A failure that retrying cannot fix."""


class ModelUnavailable(TransientError):
    """The model did not answer after the retries."""


class VersionConflict(TransientError):
    """A conditional state write found a newer version."""


class Retiring(TransientError):
    """The tenant actor is deactivating and takes no new work."""


class InvalidMessage(PermanentError):
    """An SQS message that cannot be decoded or validated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StateViolation(PermanentError):
    """A state that does not fit its alert's schema."""


class ModelAnswerInvalid(PermanentError):
    """The model's answer broke the contract even after a repair attempt."""


class SpendingLimit(PermanentError):
    """The provider refused for billing or quota reasons; not retried."""
