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


def test_results_page_is_regenerated():
    """docs/results.md is rendered from docs/results/ (the JSON files and notes.md): an
    edit there without `python experiments/make_docs/report.py` leaves the page stale."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", os.path.join(ROOT, "experiments", "make_docs", "report.py"))
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    with open(os.path.join(ROOT, "docs", "results.md")) as f:
        committed = f.read()
    assert committed == report.render(), "docs/results.md is stale: run `python experiments/make_docs/report.py`"


def markdown_pages():
    pages = ["README.md"]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        pages += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files if f.endswith(".md")]
    return sorted(pages)


@pytest.mark.parametrize("page", markdown_pages())
def test_relative_links_resolve(page):
    """Every relative link or image in the Markdown pages points at a file that exists
    (notes.md is written in docs/results/ but rendered into docs/results.md)."""
    with open(os.path.join(ROOT, page)) as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    missing = [
        t
        for t in targets
        if not re.match(r"[a-z]+:|#|/", t)
        and not os.path.exists(os.path.join(ROOT, os.path.dirname(page), t.split("#")[0]))
    ]
    assert not missing, f"{page}: links to files that do not exist: {missing}"
