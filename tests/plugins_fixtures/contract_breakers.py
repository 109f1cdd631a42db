"""Tasks that break the contract in ways the host must name: a declared capability without its
method, a method without its declaration, and a ``predict`` that raises."""

from typing import Any

from rnnvision_kit import RegisterTask, hookimpl


def _classify() -> Any:
    from rnnkit_classify.task import ImageClassifyTask

    return ImageClassifyTask()


def _predict_raises() -> Any:
    from rnnkit_classify.task import ImageClassifyTask

    class PredictRaises(ImageClassifyTask):
        def predict(self, ctx: Any) -> Any:
            raise KeyError("no such label table")

    return PredictRaises()


@hookimpl
def rnnkit_register_tasks(register: RegisterTask) -> None:
    register("undeclared", _classify, kind="image", capabilities=("report",))
    register(
        "overclaims", _classify, kind="image", capabilities=("predict", "report", "check-data")
    )
    register(
        "predict-raises",
        _predict_raises,
        kind="image",
        capabilities=("predict", "report", "export"),
    )
