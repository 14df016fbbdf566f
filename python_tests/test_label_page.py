"""to_label.html in a real browser (headless Chromium driven by Playwright): choose classes, save labels.csv, ingest it.

Needs Debian's ``chromium`` package and Playwright from PyPI (Playwright's own
browser download is not used); CI installs both, so this runs there.
"""

import csv
import shutil

import pytest

from label_support import answers, cli, example_folders, new_project, requested

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright from PyPI (pip install playwright; CI installs it with [test])")
CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install chromium; "
                                                "CI installs it)"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    example = example_folders(tmp_path_factory)
    project = new_project(tmp_path_factory.mktemp("label_page") / "project", example)
    assert cli("query", project.folder) == 0
    return project, answers(example)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        # Root in a container has no user namespaces for Chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def chosen(page, i):
    return page.locator(f"#card-{i} select").input_value()


def test_choosing_classes_and_saving_labels_csv_which_ingest_accepts(project, browser, tmp_path):
    project, truth = project
    request = project.request(1)
    paths, suggested = request["paths"], request["suggested"]
    other = [c for c in project.classes if c != suggested[3]][0]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto((project.folder / "to_label.html").as_uri())
    assert page.locator(".card").count() == 5
    # Every image is found through its relative URL, and digits are drawn large, with sharp pixels.
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("img.small").count() == 5
    assert page.locator("#card-0 img").bounding_box()["width"] >= 200
    assert [chosen(page, i) for i in range(5)] == suggested  # pre-set to the model's suggestions
    assert page.locator("#card-0.current").count() == 1

    page.keyboard.press(truth[paths[0]])  # the digit's own key chooses the class, and moves on
    assert chosen(page, 0) == truth[paths[0]] and page.locator("#card-1.current").count() == 1
    page.keyboard.press("x")  # not sure: skip, it stays requested
    page.keyboard.press("Enter")  # the suggestion is right
    page.locator("#card-3 select").select_option(other)  # or the chooser itself
    assert "4 of 5 reviewed, 1 skipped; saving now gives the other 1 the model" in page.locator("#progress").inner_text()

    page.reload()  # nothing is lost if the tab is reloaded
    assert [chosen(page, i) for i in range(4)] == [truth[paths[0]], "", suggested[2], other]
    assert page.locator("#card-1.skipped").count() == 1

    with page.expect_download() as download:
        page.click("#save")
    assert download.value.suggested_filename == "labels.csv"
    saved = tmp_path / "labels.csv"
    download.value.save_as(saved)
    context.close()
    with open(saved, encoding="utf-8") as handle:
        rows = [(row["path"], row["label"]) for row in csv.DictReader(handle)]
    expected = [(paths[0], truth[paths[0]]), (paths[2], suggested[2]), (paths[3], other), (paths[4], suggested[4])]
    assert rows == expected

    assert cli("ingest", project.folder, saved) == 0
    labels = project.labels()
    assert {p: labels[p]["label"] for p, _ in expected} == dict(expected)
    assert requested(project) == [paths[1]]
    # The page now shows only what is still requested.
    page = browser.new_page()
    page.goto((project.folder / "to_label.html").as_uri())
    assert page.locator(".card").count() == 1 and page.locator("#card-0").get_attribute("data-path") == paths[1]
    page.close()
