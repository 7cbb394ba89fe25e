"""Make docs/images/explore.png, the screenshot of ``creditsim explore`` in the README and docs/how-to/explore.md.

    python docs/explore_screenshot.py [--paths 200] [--out docs/images/explore.png]

Starts ``creditsim explore --no-browser`` on the bundled 嘉兴 plan, opens the page in headless Chromium (selenium,
with chromium and chromedriver installed), waits for the baseline's paths, lowers the county guarantor's fee from
1.2% to 0.5% as a planner would, waits for every path of the variant and saves the page. The elements of the page
sit in the shadow roots Bokeh draws each component in; :func:`deep` finds them there (the explorer's browser test
uses it too).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Every element matching a CSS selector in the page and in every shadow root in it; ``HOST >>> INNER`` finds INNER
#: inside the elements matching HOST (and their shadow roots).
DEEP = """
const [host, inner] = arguments[0].split(' >>> ');
const within = (root, selector, out) => {
  out.push(...root.querySelectorAll(selector));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) within(e.shadowRoot, selector, out); });
  return out;
};
const hosts = within(document, host, []);
if (!inner) return hosts;
return hosts.flatMap(h => within(h.shadowRoot || h, inner, []));
"""


def deep(driver: Any, selector: str) -> list[Any]:
    """The elements :data:`DEEP` finds for ``selector``."""
    return driver.execute_script(DEEP, selector)


def type_into(driver: Any, element: Any, text: str) -> None:
    """Give an input of the page a value as typing it and pressing Enter would (its change event), at once."""
    driver.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}))", element, text)


def chart(driver: Any) -> str:
    """The fan chart's image as the page holds it ("" before it is drawn)."""
    found = deep(driver, ".fan-chart >>> img") or deep(driver, ".fan-chart >>> svg")
    return found[0].get_attribute("outerHTML") if found else ""


def status(driver: Any) -> str:
    """The page's line saying what is shown (paths, seed, the levers moved, "partial" until every path is in)."""
    found = deep(driver, ".run-status")
    return found[0].text if found else ""


def wait_for(driver: Any, condition: Any, what: str, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}; the page says {status(driver)!r}")
        time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images" / "explore.png")
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "creditsim.present.cli", "explore", "--no-browser", "--port", str(port), "--paths", str(args.paths)],
                              stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1050", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        server.stdout.readline()  # "serving …": the server is up
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(driver, lambda: "the scenario as it is" in status(driver), "the baseline")
        [fee] = deep(driver, ".lever-guarantors-county-fee_rate >>> input")
        type_into(driver, fee, "0.5")
        wait_for(driver, lambda: "variant:" in status(driver) and "partial" not in status(driver) and chart(driver), "the variant")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
