"""Model builders: plain functions `(spec, **options) -> keras.Model`, usable from the runner or a notebook.

    from rnnbench.models import lstm_attention
    model = lstm_attention(spec, units=64)

Everything here uses `keras.layers` and `keras.ops` only, so it runs on any Keras 3 backend. Every module of this
package is imported here and registers its builders with `@register_model`, so a new model family is one new file;
each registered builder is also importable from this package by its name.
"""
import importlib
import pkgutil

from rnnbench import registry as _registry
from rnnbench.models.recurrent import CELLS, IncompatibleModelError, count_trainable, recurrent_model  # noqa: F401
from rnnbench.models.tools import attention_weights, compile_model, ctc_loss, cudnn_report  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

globals().update({name: _registry.get_model(name) for name in _registry.list_models()})
__all__ = _registry.list_models() + [
    "CELLS", "IncompatibleModelError", "attention_weights", "compile_model", "count_trainable", "ctc_loss",
    "cudnn_report", "recurrent_model"]
