"""The page at / in a real headless Chromium: fill the form, get the class and probabilities."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.processes import Server

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def predict_in_page(browser: webdriver.Chrome, server: Server, values: list[str]) -> None:
    browser.get(f"{server.base_url}/")
    for name, value in zip(
        ("sepal_length", "sepal_width", "petal_length", "petal_width"), values, strict=True
    ):
        field = browser.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.ID, "predict-button").click()


def test_form_shows_class_and_probabilities(browser: webdriver.Chrome, api_server: Server) -> None:
    predict_in_page(browser, api_server, ["6.7", "3.0", "5.2", "2.3"])
    prediction = WebDriverWait(browser, 15).until(
        expected_conditions.visibility_of_element_located((By.ID, "prediction"))
    )
    assert prediction.text == "virginica"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-class]")
    shares = {
        row.get_attribute("data-class"): float(row.find_element(By.CLASS_NAME, "probability").text)
        for row in rows
    }
    assert set(shares) == {"setosa", "versicolor", "virginica"}
    assert max(shares, key=lambda name: shares[name]) == "virginica"
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.005)
    assert "iris-classifier" in browser.find_element(By.CLASS_NAME, "model").text


def test_form_reports_an_error_from_the_api(browser: webdriver.Chrome, api_server: Server) -> None:
    # Past the browser's own checks (a text field, no validation), "wide" becomes NaN, which
    # JSON.stringify sends as null: the API answers 422 not_a_number and the page shows it.
    browser.get(f"{api_server.base_url}/")
    browser.execute_script(
        "document.getElementById('predict-form').noValidate = true;"
        "document.getElementById('sepal_length').type = 'text';"
    )
    browser.find_element(By.ID, "sepal_length").clear()
    browser.find_element(By.ID, "sepal_length").send_keys("wide")
    browser.find_element(By.ID, "predict-button").click()
    error = WebDriverWait(browser, 15).until(
        expected_conditions.visibility_of_element_located((By.ID, "error"))
    )
    assert "422" in error.text
    assert "features[0]" in error.text
