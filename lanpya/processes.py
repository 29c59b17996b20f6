"""The processes of the architecture, in one table.

``lanpya run`` starts each with the local virtual environments' interpreters;
docker-compose runs the same arguments with the image's (a test checks that
the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass

from lanpya.config import ROOT


@dataclass(frozen=True)
class Process:
    name: str
    #: "app" (Python 3.11, the `lanpya` command) or "rasa" (Python 3.10)
    runtime: str
    args: tuple[str, ...]

    def local_command(self) -> list[str]:
        if self.runtime == "app":
            return [str(ROOT / ".venv" / "bin" / "lanpya"), *self.args]
        return [str(ROOT / ".venv-rasa" / "bin" / "python"), *self.args]

    def compose_command(self) -> list[str]:
        return ["lanpya", *self.args] if self.runtime == "app" else ["python", *self.args]


PROCESSES: tuple[Process, ...] = (
    Process("rasa", "rasa", ("bot/serve.py", "rasa")),
    Process("actions", "rasa", ("bot/serve.py", "actions")),
    Process("web", "app", ("web",)),
    Process("worker", "app", ("worker",)),
    Process("scheduler", "app", ("scheduler",)),
)
