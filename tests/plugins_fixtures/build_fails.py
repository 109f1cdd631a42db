"""A plugin whose task registers fine but fails when its data is built."""

from typing import Any

from rnnvision_kit import DataConfig, RunConfig, Task, TrainConfig, hookimpl


class FailsAtBuild(Task):
    def default_config(self) -> RunConfig:
        return RunConfig(task="", data=DataConfig(source="nowhere"), train=TrainConfig())

    def build_data(self, ctx: Any) -> Any:
        raise ValueError("cannot find the data")


@hookimpl
def rnnkit_register_tasks(register: Any) -> None:
    register(
        "fails-at-build",
        FailsAtBuild,
        kind="image",
        description="a task whose data cannot be built",
    )
