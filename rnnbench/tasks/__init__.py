"""Tasks: one module per task, each registering a loader `load(**options) -> TaskSpec` with `@register_task`.

Every module in this package is imported here, so adding a task is adding a file.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
