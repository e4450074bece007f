"""The model a worker serves, swapped atomically, with a background poll until one exists."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.model.fast_model import FastModelError
from app.model.model_source import LoadedModel, ModelUnavailable
from app.serving import metrics
from app.serving.prediction_metrics import PredictionRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded model with what serving it needs, built once when it is installed."""

    model: LoadedModel
    recorder: PredictionRecorder
    info: dict[str, str]


class ModelHolder:
    """Holds the current model; requests read `current` once and use that object throughout."""

    def __init__(self, loader: Callable[[], LoadedModel]) -> None:
        self._loader = loader
        self._stop = threading.Event()
        self.current: ServedModel | None = None
        metrics.MODEL_READY.set(0)

    def try_load(self) -> bool:
        try:
            model = self._loader()
        except ModelUnavailable as error:
            log.warning("model not available yet: %s", error)
            return False
        except FastModelError as error:
            log.error("refusing to serve model: %s", error)
            return False
        self.install(model)
        return True

    def install(self, model: LoadedModel) -> None:
        previous = self.current
        recorder = PredictionRecorder(
            model.ref.name,
            model.ref.version,
            model.fast.class_names,
            model.fast.feature_names,
            model.fast.baseline,
        )
        served = ServedModel(model, recorder, {"name": model.ref.name, "version": model.ref.version})
        self.current = served  # one reference assignment: requests see old or new, never half
        if previous is not None:
            metrics.MODEL_INFO.remove(*self._info_labels(previous.model))
        metrics.MODEL_INFO.labels(*self._info_labels(model)).set(1)
        for class_name, share in model.fast.baseline["class_share"].items():
            metrics.BASELINE_CLASS_SHARE.labels(class_name).set(share)
        metrics.MODEL_READY.set(1)
        log.info("serving %s version %s from %s", model.ref.name, model.ref.version, model.ref.directory)

    @staticmethod
    def _info_labels(model: LoadedModel) -> tuple[str, str, str, str]:
        return (model.ref.name, model.ref.version, model.fast.metadata["format"], model.ref.source)

    def poll_until_loaded(self, interval_seconds: float) -> None:
        """Retry in a daemon thread until a model loads (a fresh stack has no champion yet)."""

        def loop() -> None:
            while not self._stop.wait(interval_seconds):
                if self.try_load():
                    return

        threading.Thread(target=loop, name="model-poll", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
