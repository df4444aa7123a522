"""Install zkpy; build the native core with cffi when a C compiler is there, else use the twins."""

from __future__ import annotations

import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A failed native build is a warning: the package then runs on its pure-Python twins."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any compiler failure means "no native"
            print(f"warning: native build failed ({e}); using the pure-Python twins", file=sys.stderr)

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            print(f"warning: building {ext.name} failed ({e}); using the pure-Python twins", file=sys.stderr)


def native_extensions() -> list:  # type: ignore[type-arg]
    try:
        sys.path.insert(0, ".")
        from native._build import ffibuilder

        return [ffibuilder.distutils_extension()]
    except Exception as e:  # noqa: BLE001
        print(f"warning: cannot prepare the native build ({e})", file=sys.stderr)
        return []
    finally:
        sys.path.pop(0)


setup(
    name="zkpy",
    version="0.1.0",
    description="A ZooKeeper-class coordination service in Python with a C core",
    python_requires=">=3.11",
    packages=find_packages(include=["zkcore*", "native*", "cluster*", "zkclient*", "checker*", "verify*"]),
    package_data={"native": ["src/*.c", "src/*.h", "src/*.cdef"]},
    install_requires=["cffi>=1.15", "pyzmq>=25", "psutil>=5.9", "tabulate>=0.9", "prometheus_client>=0.17"],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "pytest-benchmark>=4",
            "mypy>=1.8",
            "ruff>=0.4",
            "types-psutil",
            "types-tabulate",
            "kazoo>=2.9",  # a real ZooKeeper client, for the ZooKeeper-protocol door's tests
        ],
    },
    setup_requires=["cffi>=1.15"],
    ext_modules=native_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
