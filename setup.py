"""Build hook: a wheel of intagent carries the project's own files inside the package.

intagent reads its roles, entry playbooks, templates, knowledge, eval tasks and ansible.cfg at run time
(``integration_agent/paths.py``). In a checkout they live at the repository root; a wheel copies them to
``integration_agent/_data/``, where ``paths.py`` finds them once installed. An editable install keeps
reading them from the checkout. Everything else about the package is declared in ``pyproject.toml``;
``MANIFEST.in`` puts the same files in an sdist, so a wheel built from it carries them too.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _paths():
    """``integration_agent/paths.py`` on its own (it imports nothing but pathlib): the list of what ships."""
    spec = importlib.util.spec_from_file_location("_intagent_paths", HERE / "integration_agent" / "paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProjectFiles(build_py):
    """``build_py`` that also copies the shipped project files into ``integration_agent/_data``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        paths = _paths()
        target = Path(self.build_lib) / "integration_agent" / paths.DATA_DIRNAME
        shutil.rmtree(target, ignore_errors=True)  # nothing stale from an earlier build
        target.mkdir(parents=True)
        for name in paths.SHIPPED:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
            elif source.is_file():
                shutil.copy2(source, target / name)
            else:
                raise FileNotFoundError(f"{source}: listed in integration_agent/paths.py SHIPPED but missing")


setup(cmdclass={"build_py": BuildPyWithProjectFiles})
