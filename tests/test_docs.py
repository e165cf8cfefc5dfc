"""The README and the documentation's example runner (tests/doc_examples.py).

The runner is what makes the guide's examples tests, so it is tested here on
pages of our own, offline: a page whose output differs must fail, a code
block nothing would run must be refused, and a console block must show what
a terminal shows. The README must fit a screen's worth of reading and link
only to pages that exist.
"""

from __future__ import annotations

import doctest
import re

import pytest

from doc_examples import (README, ROOT, FenceError, _defined_here, module_name, parse_page,
                          shell_for)


def run(text: str) -> doctest.TestResults:
    test = doctest.DocTest(parse_page(text), {"shell": shell_for({"c1": "web1"})}, "page",
                           "page.md", 0, None)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    return runner.run(test, out=lambda _: None)


def test_a_page_that_shows_what_runs_passes() -> None:
    page = "# t\n\n```pycon\n>>> 1 + 1\n2\n>>> print('a...')\na...\n```\n"
    assert run(page) == doctest.TestResults(failed=0, attempted=2)


def test_a_page_whose_output_differs_fails() -> None:
    assert run("```pycon\n>>> 1 + 1\n3\n```\n").failed == 1


def test_examples_keep_their_lines_in_the_page() -> None:
    examples = parse_page("# t\n\ntext\n```pycon\n>>> x = 1\n>>> x\n1\n```\n")
    assert [example.lineno + 1 for example in examples] == [5, 6]


def test_blocks_of_a_page_share_one_namespace() -> None:
    page = "```pycon\n>>> x = 41\n```\nprose\n```pycon\n>>> x + 1\n42\n```\n"
    assert run(page).failed == 0


@pytest.mark.parametrize("kind", ["python", "sh", "bash", "shell"])
def test_a_block_that_nothing_would_run_is_refused(kind: str) -> None:
    with pytest.raises(FenceError, match=f"```{kind} block is code nothing runs"):
        parse_page(f"text\n```{kind}\nprint('never run')\n```\n")


def test_text_and_unlabelled_blocks_are_not_run() -> None:
    assert parse_page("```text\n>>> not run\n```\n```\n$ not run\n```\n") == []


def test_an_unclosed_fence_is_refused() -> None:
    with pytest.raises(FenceError, match="line 2: a ``` fence is never closed"):
        parse_page("text\n```pycon\n>>> 1\n")


def test_console_blocks_run_with_the_page_names_and_show_the_exit_code() -> None:
    page = ("```console\n$ echo \"$c1\"; echo oops >&2\nweb1\noops\n"
            "$ exit 3\n[exit 3]\n$ true\n```\n")
    assert run(page) == doctest.TestResults(failed=0, attempted=3)


def test_a_console_command_whose_exit_code_is_not_shown_fails() -> None:
    assert run("```console\n$ false\n```\n").failed == 1


def test_the_readme_fits_a_screen_of_reading() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_the_readme_links_only_to_files_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"https://github\.com/apitx/apitx/(?:blob|tree)/main/([^)\s]+)", text)
    assert len(links) > 10
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []


def test_the_readme_has_the_two_commands_and_the_install() -> None:
    text = README.read_text(encoding="utf-8")
    for line in ("pip install apitx", "pip install 'apitx[async]'", "pip install 'apitx[testing]'",
                 "scripts/demo ", "scripts/test "):
        assert line in text


def test_a_module_file_is_named_as_python_imports_it() -> None:
    assert module_name(ROOT / "apitx" / "_aio" / "_api.py") == "apitx._aio._api"
    assert module_name(ROOT / "apitx" / "__init__.py") == "apitx"


def test_each_docstring_is_collected_once_from_the_module_that_names_it() -> None:
    """The exceptions say they are ``apitx.<Name>``: their examples are found
    from ``apitx``, not ``apitx._exceptions``; re-exported names elsewhere are
    not found again from ``apitx``."""
    import apitx
    import apitx._exceptions
    import apitx._redact

    def names(module: object) -> set:
        return {test.name for test in doctest.DocTestFinder().find(module)
                if test.examples and _defined_here(test, module)}

    assert "apitx.APIException" in names(apitx)
    assert "apitx.API" not in names(apitx)  # apitx._api's own
    assert "apitx._redact.redact_free_text" in names(apitx._redact)
    assert not any("APIException" in name for name in names(apitx._exceptions))
