"""Names of every AWS resource, derived from the settings' prefix."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import DATA_TYPES, Settings

UNROUTED = "unrouted"


@dataclass(frozen=True)
class ResourceNames:
    prefix: str

    @classmethod
    def of(cls, settings: Settings) -> ResourceNames:
        return cls(settings.resource_prefix)

    @property
    def topic(self) -> str:
        return f"{self.prefix}-communications"

    def queue(self, kind: str) -> str:
        """The queue of a data type, or of ``UNROUTED`` messages."""
        return f"{self.prefix}-{kind.replace('_', '-')}"

    def dlq(self, kind: str) -> str:
        return f"{self.queue(kind)}-dlq"

    @property
    def input_kinds(self) -> tuple[str, ...]:
        return (*DATA_TYPES, UNROUTED)

    @property
    def output_queue(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def output_dlq(self) -> str:
        return f"{self.prefix}-alerts-dlq"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-payloads"

    @property
    def alerts_table(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def ledger_table(self) -> str:
        return f"{self.prefix}-ledger"

    @property
    def pending_table(self) -> str:
        return f"{self.prefix}-pending"

    @property
    def tenants_table(self) -> str:
        return f"{self.prefix}-tenants"
