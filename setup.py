"""Build script for the native extensions.

Metadata lives in pyproject.toml; this file only declares the Cython extensions.
Set ACTIONQUEUE_PUREPYTHON=1 at build time to skip them (a pure-Python install).
"""
import os
import platform
import sys

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("ACTIONQUEUE_PUREPYTHON") and platform.python_implementation() == "CPython":
    from Cython.Build import cythonize

    if sys.platform == "win32":
        # MSVC: setuptools' release flags already carry no debug info (no /Zi)
        extra_compile_args = ["/O2"]
    else:
        # GCC/Clang: -g0 comes after the CFLAGS Python was built with (often -g), so the
        # modules carry no DWARF debug info (megabytes per module, in every wheel)
        extra_compile_args = ["-O3", "-fno-strict-aliasing", "-g0"]

    directives = {
        "language_level": 3,
        "boundscheck": False,  # every buffer access is checked explicitly against `end`
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        "embedsignature": True,
    }
    ext_modules = cythonize(
        [
            Extension(
                "actionqueue.model._ids",
                ["actionqueue/model/_ids.pyx"],
                include_dirs=["actionqueue/includes"],
                extra_compile_args=extra_compile_args,
            ),
            Extension(
                "actionqueue.codec._codec",
                ["actionqueue/codec/_codec.pyx"],
                include_dirs=["actionqueue/includes"],
                extra_compile_args=extra_compile_args,
            ),
            Extension(
                "actionqueue.log._walk",
                ["actionqueue/log/_walk.pyx"],
                include_dirs=["actionqueue/includes"],
                extra_compile_args=extra_compile_args,
            ),
            Extension(
                "actionqueue.snapshot._sjson",
                ["actionqueue/snapshot/_sjson.pyx"],
                include_dirs=["actionqueue/includes"],
                extra_compile_args=extra_compile_args,
            ),
            # plain Python compiled with the types of reducer.pxd (the .py is the only source)
            Extension("actionqueue.state.rules", ["actionqueue/state/rules.py"], extra_compile_args=extra_compile_args),
            Extension("actionqueue.state.records", ["actionqueue/state/records.py"], extra_compile_args=extra_compile_args),
            Extension("actionqueue.state.projection", ["actionqueue/state/projection.py"], extra_compile_args=extra_compile_args),
            Extension("actionqueue.state.reducer", ["actionqueue/state/reducer.py"], extra_compile_args=extra_compile_args),
        ],
        compiler_directives=directives,
    )

setup(ext_modules=ext_modules)
