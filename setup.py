"""Install zkpy; build the native core with cffi when a C compiler is there, else use the twins."""

from __future__ import annotations

import os
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


CONSOLE_SCRIPTS = {
    "zkpy": "cluster.launch:main",  # start, status, stop, stop-node, ...; log, snapshot, check, purge
    "zkpy-node": "cluster.node:main",  # one server, for systemd units on several hosts
    "zkpy-verify": "verify.__main__:main",
    "zkpy-cli": "zkclient.cli:main",
    "zkpy-admin": "zkclient.admin:main",
}
CLIENT_SCRIPTS = ("zkpy-cli", "zkpy-admin")

# `ZKPY_DIST=client pip install .` installs the client alone: zkclient with the pure records of
# zkcore it speaks, needing only pyzmq (no server, no native build, no psutil).
if os.environ.get("ZKPY_DIST") == "client":
    setup(
        name="zkpy-client",
        version="0.1.0",
        description="The Python client (kazoo's API) and CLI for zkpy, without the server",
        python_requires=">=3.11",
        packages=find_packages(include=["zkclient*", "zkcore*"]),
        package_data={"zkclient": ["py.typed"], "zkcore": ["py.typed"]},
        install_requires=["pyzmq>=25"],
        entry_points={"console_scripts": [f"{k}={CONSOLE_SCRIPTS[k]}" for k in CLIENT_SCRIPTS]},
        zip_safe=False,
    )
    sys.exit(0)

setup(
    name="zkpy",
    version="0.1.0",
    description="A ZooKeeper-class coordination service in Python with a C core",
    python_requires=">=3.11",
    packages=find_packages(
        include=["zkcore*", "native*", "cluster*", "zkclient*", "checker*", "verify*", "bench*"]
    ),
    package_data={
        "native": ["src/*.c", "src/*.h", "src/*.cdef", "py.typed"],
        **{name: ["py.typed"] for name in ("zkcore", "cluster", "zkclient", "checker", "verify")},
    },
    install_requires=["cffi>=1.15", "pyzmq>=25", "psutil>=5.9", "tabulate>=0.9", "prometheus_client>=0.17"],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "pytest-benchmark>=4",
            "pytest-xdist>=3",  # the sans-I/O tests on two workers (make test)
            "mypy>=1.8",
            "ruff>=0.4",
            "types-psutil",
            "types-tabulate",
            "kazoo>=2.9",  # a real ZooKeeper client, for the ZooKeeper-protocol door's tests
        ],
        "bench": ["matplotlib>=3.5"],  # python -m bench draws its plots with it (optional)
    },
    entry_points={"console_scripts": [f"{name}={target}" for name, target in CONSOLE_SCRIPTS.items()]},
    setup_requires=["cffi>=1.15"],
    ext_modules=native_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
