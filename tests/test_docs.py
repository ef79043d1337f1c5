"""The Python examples in the docs run as written."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(path):
    with open(os.path.join(ROOT, path)) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks("docs/library.md"))))
def test_library_guide_examples_run(index):
    exec(compile(python_blocks("docs/library.md")[index], f"docs/library.md[{index}]", "exec"), {})


def test_library_guide_has_examples():
    assert len(python_blocks("docs/library.md")) >= 2
