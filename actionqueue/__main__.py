"""``python -m actionqueue``: the command line (see :mod:`actionqueue.cli`).

Run from the directory that holds a clone named ``actionqueue`` (installed in development
mode, ``pip install -e actionqueue``), ``import actionqueue`` finds that folder first: the
current directory leads ``sys.path``, and the clone's root, which has no ``__init__.py``,
is taken for a namespace package before the editable install's finder is asked. This
file is still found (through that finder), but the package it belongs to is not the one
imported, so every relative import of the package's own names fails. It therefore
imports its package from its own folder first.
"""

import importlib.util
import os
import sys


def _import_own_package() -> None:
    """Make ``sys.modules["actionqueue"]`` the package this file belongs to when a
    namespace package of the same name (a clone's root) stands in its place."""
    here = os.path.dirname(os.path.abspath(__file__))
    package = sys.modules.get(__package__ or "actionqueue")
    if package is not None and getattr(package, "__file__", None) is not None:
        return  # the regular package: nothing stands in its place
    for name in [n for n in sys.modules if n == "actionqueue" or n.startswith("actionqueue.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("actionqueue", os.path.join(here, "__init__.py"),
                                                  submodule_search_locations=[here])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["actionqueue"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    _import_own_package()
    from actionqueue.cli import main

    sys.exit(main())
