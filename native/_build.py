"""cffi builder for the native core: every `src/*.c` is compiled into `native._zkpy_native`,
and the declarations Python sees are the `src/*.cdef` files, concatenated in name order.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def _relative(p: Path) -> str:
    # setuptools wants source paths relative to setup.py's folder.
    return str(p.relative_to(HERE.parent))


def make_builder() -> FFI:
    ffi = FFI()
    ffi.cdef("\n".join(p.read_text() for p in sorted(SRC.glob("*.cdef"))))
    ffi.set_source(
        "native._zkpy_native",
        "\n".join(f'#include "{h.name}"' for h in sorted(SRC.glob("*.h"))),
        sources=[_relative(c) for c in sorted(SRC.glob("*.c"))],
        include_dirs=[str(SRC)],
        extra_compile_args=["-O2", "-std=gnu11", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        extra_link_args=["-pthread"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    ffibuilder.compile(verbose=False)
